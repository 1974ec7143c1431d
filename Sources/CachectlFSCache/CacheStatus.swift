import CachectlMount
import CachectlSystem
import FoundationEssentials
import Glibc

/// `cachectl cache status`: the config, the daemon, the kernel's caches and
/// counters, and the cache directory's usage against the thresholds.
public struct CacheStatus: Sendable, Codable, Equatable {
    public var configPath: String
    public var config: CachefilesdConfig?
    public var daemonPids: [Int32]
    public var caches: [FSCacheCache]
    /// Which layout the kernel's counters are in, and so what they count.
    public var statsLayout: CacheTraffic.Layout?
    /// What cacheReads, cacheWrites, downloads and lookups count: pages or operations.
    public var unit: CacheTraffic.Unit?
    public var cacheReads: UInt64?
    public var cacheWrites: UInt64?
    public var downloads: UInt64?
    public var lookups: UInt64?
    public var hitRatio: Double?
    public var hitRatioBasis: String?
    public var cookies: UInt64?
    public var culled: UInt64?
    public var noSpaceWrites: UInt64?
    public var counters: [String: [String: UInt64]]
    public var usage: CacheDirectory.Usage?
    public var findings: [Finding]

    public static func read(configPath: String = "/etc/cachefilesd.conf", roots: KernelRoots = .system) -> CacheStatus {
        let config = (try? AtomicFile.readText(configPath)).map(CachefilesdConfig.parse)
        let stats = (try? FSCacheStats.read(proc: roots.proc)) ?? FSCacheStats()
        let traffic = stats.counters.isEmpty ? nil : (try? CacheTraffic.read(proc: roots.proc))
        let usage = config.flatMap { try? CacheDirectory.usage(of: $0.dir) }
        var findings: [Finding] = []
        if let config, let usage {
            findings.append(
                CacheDirectory.spaceFinding(
                    "free space", usage.freeBytesPercent, run: config.brun, cull: config.bcull, stop: config.bstop,
                    dir: config.dir, prefix: "b"))
            findings.append(
                CacheDirectory.spaceFinding(
                    "free files", usage.freeFilesPercent, run: config.frun, cull: config.fcull, stop: config.fstop,
                    dir: config.dir, prefix: "f"))
        }
        return CacheStatus(
            configPath: configPath, config: config, daemonPids: CachefilesDaemon.runningPIDs(proc: roots.proc),
            caches: (try? FSCacheCache.read(proc: roots.proc)) ?? [],
            statsLayout: traffic?.layout, unit: traffic?.unit,
            cacheReads: traffic?.cacheReads, cacheWrites: traffic?.cacheWrites, downloads: traffic?.downloads,
            lookups: traffic?.lookups, hitRatio: traffic?.hitRatio, hitRatioBasis: traffic?.hitRatioBasis,
            cookies: stats.cookies, culled: stats.culled, noSpaceWrites: stats.noSpaceWrites,
            counters: stats.counters, usage: usage, findings: findings)
    }
}

/// `cachectl doctor`: every link of the chain from kernel to mount, each
/// finding with the command that fixes it.
public enum Doctor {
    public static func examine(configPath: String = "/etc/cachefilesd.conf", roots: KernelRoots = .system) -> [Finding]
    {
        var findings: [Finding] = []
        let fm = FileManager.default
        if fm.fileExists(atPath: roots.proc + "/fs/fscache") {
            findings.append(Finding("kernel fscache", .ok, "FS-Cache is in the kernel (\(roots.proc)/fs/fscache)"))
        } else {
            findings.append(
                Finding(
                    "kernel fscache", .error, "no \(roots.proc)/fs/fscache: FS-Cache is not loaded",
                    fix: "modprobe cachefiles (needs CONFIG_FSCACHE and CONFIG_CACHEFILES)"))
        }
        if fm.fileExists(atPath: roots.dev + "/cachefiles") {
            findings.append(Finding("cachefiles module", .ok, "\(roots.dev)/cachefiles exists"))
        } else {
            findings.append(
                Finding(
                    "cachefiles module", .error, "no \(roots.dev)/cachefiles: the cachefiles module is not loaded",
                    fix: "modprobe cachefiles"))
        }
        let config: CachefilesdConfig?
        if let text = try? AtomicFile.readText(configPath) {
            let parsed = CachefilesdConfig.parse(text)
            config = parsed
            do {
                try parsed.validate()
                findings.append(Finding("config", .ok, "\(configPath): cache in \(parsed.dir), tag \(parsed.tag)"))
            } catch {
                findings.append(
                    Finding("config", .error, "\(configPath): \(error)", fix: "cachectl cache setup --dir DIR"))
            }
        } else {
            config = nil
            findings.append(
                Finding("config", .error, "no \(configPath)", fix: "cachectl cache setup --dir /var/cache/fscache"))
        }
        let pids = CachefilesDaemon.runningPIDs(proc: roots.proc)
        if pids.isEmpty {
            let systemd = Systemd.isRunning(proc: roots.proc)
            // The last words of one cachectl started without systemd (systemd keeps them in its journal).
            let said =
                systemd
                ? ""
                : ((try? AtomicFile.readText(CachefilesDaemon.logPath)) ?? "")
                    .split(separator: "\n").suffix(3).joined(separator: " | ")
            findings.append(
                Finding(
                    "daemon", .error,
                    "cachefilesd is not running" + (said.isEmpty ? "" : "; \(CachefilesDaemon.logPath) ends: \(said)"),
                    fix: systemd
                        ? "systemctl enable --now cachefilesd (or cachectl cache setup)"
                        : "cachectl cache setup (starts cachefilesd)"))
        } else {
            findings.append(
                Finding("daemon", .ok, "cachefilesd running (pid \(pids.map(String.init).joined(separator: ",")))"))
        }
        if let traffic = try? CacheTraffic.read(proc: roots.proc) {
            findings.append(
                Finding(
                    "counters", .ok,
                    "FS-Cache's counters are in the \(traffic.layout.rawValue) layout: they count \(traffic.unit.rawValue)"
                        + (traffic.layout == .ioPages
                            ? " (IO rd counts lookups, found or not; NFS's mountstats say what was served)" : "")))
        }
        let caches = (try? FSCacheCache.read(proc: roots.proc)) ?? []
        if let active = caches.first(where: \.isActive) {
            findings.append(
                Finding("cache bound", .ok, "cache \(active.name) is active (\(active.objects ?? 0) objects)"))
        } else if let cache = caches.first {
            findings.append(
                Finding(
                    "cache bound", .error, "cache \(cache.name) is \(cache.stateName), not active",
                    fix: "check the kernel log (dmesg | grep -i cachefiles), then cachectl cache setup"))
        } else {
            findings.append(
                Finding(
                    "cache bound", .error, "no cache is bound to FS-Cache",
                    fix: "cachectl cache setup (cachefilesd binds the cache when it starts)"))
        }
        if let config {
            if fm.fileExists(atPath: config.dir) {
                findings += CacheDirectory.check(config, sys: roots.sys)
            } else {
                findings.append(
                    Finding(
                        "cache dir", .error, "\(config.dir) does not exist",
                        fix: "cachectl cache setup --dir \(config.dir)"))
            }
        }
        let mounts = (try? NetworkMounts.list(roots: roots)) ?? []
        if mounts.isEmpty {
            findings.append(
                Finding(
                    "mounts", .warning, "no NFS or CIFS mount: nothing for FS-Cache to back",
                    fix: "mount the model share (with fsc), then cachectl fsc enable MOUNTPOINT"))
        }
        for mount in mounts {
            let name = "mount \(mount.mountpoint)"
            if mount.fscEnabled {
                findings.append(Finding(name, .ok, "\(mount.source) (\(mount.fstype)) has FS-Cache on"))
                if mount.fstabHasFsc == false {
                    findings.append(
                        Finding(
                            name, .warning,
                            "fstab has no fsc for \(mount.mountpoint): FS-Cache is lost at the next mount",
                            fix: "cachectl fsc enable \(mount.mountpoint)"))
                } else if mount.fstabHasFsc == nil {
                    findings.append(
                        Finding(
                            name, .warning,
                            "\(mount.mountpoint) has no fstab entry: its fsc option does not survive a reboot",
                            fix: "add an fstab line for it with fsc"))
                }
            } else {
                findings.append(
                    Finding(
                        name, .warning, "\(mount.source) (\(mount.fstype)) is mounted without FS-Cache",
                        fix: "cachectl fsc enable \(mount.mountpoint)"))
            }
            if mount.kind == .nfs, let kb = mount.readaheadKB, kb < 1024 {
                findings.append(
                    Finding(
                        name, .warning, "readahead is \(kb) KiB: large sequential reads stall on round trips",
                        fix: "cachectl fsc enable \(mount.mountpoint) --readahead 16M"))
            }
        }
        return findings
    }
}
