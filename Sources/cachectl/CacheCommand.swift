import ArgumentParser
import CachectlFSCache
import CachectlSystem
import FoundationEssentials
import Glibc

struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Set up and inspect FS-Cache's local disk cache (cachefilesd).",
        discussion: """
            FS-Cache keeps a local-disk copy of what is read from NFS/CIFS mounts that have the \
            fsc option. cachefilesd manages that cache in a directory on a local filesystem.

            Examples:
              cachectl cache setup --dir /var/cache/fscache
              cachectl cache setup --dir /srv/cache --brun 15 --bcull 10 --bstop 5 --diff
              cachectl cache status
            """,
        subcommands: [CacheSetupCommand.self, CacheStatusCommand.self, CacheSuperviseCommand.self]
    )
}

/// What `cache setup` starts where PID 1 is not systemd; not for typing.
struct CacheSuperviseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "supervise",
        abstract: "Run cachefilesd and start it again when a signal kills it (started by cache setup without systemd).",
        discussion: """
            Where PID 1 is not systemd, cache setup runs this in a session of its own, as \
            cachectl's systemd unit would run cachefilesd: in the foreground, its messages in \
            /run/cachectl/cachefilesd.log, started again 0.2 s after a signal other than \
            SIGTERM, SIGINT, SIGHUP or SIGPIPE ends it (at most 5 times a minute). It exits \
            when cachefilesd exits (stopped with SIGTERM, or a config or bind error), with its status.
            """,
        shouldDisplay: false
    )

    @Option(help: "cachefilesd config to run with.") var config: String = "/etc/cachefilesd.conf"

    func run() throws {
        _ = chdir("/")  // hold no mount busy: cache setup may have been run inside a share
        throw ExitCode(CachefilesDaemon.supervise(configPath: config))
    }
}

struct CacheSetupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Write /etc/cachefilesd.conf, check the cache directory, and (re)start cachefilesd.",
        discussion: """
            Validates every value before writing (0 <= bstop < bcull < brun < 100, the same for \
            f*; culltable 12..20; an absolute dir; no value may add a line to the file). Checks \
            the cache directory (created if missing): a local filesystem, user xattrs, free space \
            above brun, the SELinux label when enforcing. Writes the file atomically and keeps the \
            old one as cachefilesd.conf.cachectl.bak. Restarts cachefilesd only when the file \
            changed (through systemd when PID 1 is systemd, else under cachectl cache supervise, \
            which logs to /run/cachectl/cachefilesd.log and starts it again if a signal kills it). A \
            second identical run changes nothing (changed: false).

            Thresholds are percentages of free space (b*) and free files (f*): the cache grows \
            above *run, culls below *cull and stops caching below *stop.

            Examples:
              cachectl cache setup --dir /var/cache/fscache
              cachectl cache setup --dir /srv/fscache --tag models --brun 20 --bcull 15 --bstop 10
              cachectl cache setup --dir /srv/fscache --check --diff
            """
    )

    @Option(help: "Cache directory (absolute path, on a local filesystem with user xattrs).")
    var dir: String = CachefilesdConfig().dir
    @Option(help: "Cache tag (one word).")
    var tag: String = CachefilesdConfig().tag
    @Option(help: "Percent free space above which the cache grows freely.") var brun: Int = CachefilesdConfig().brun
    @Option(help: "Percent free space below which culling starts.") var bcull: Int = CachefilesdConfig().bcull
    @Option(help: "Percent free space below which caching stops.") var bstop: Int = CachefilesdConfig().bstop
    @Option(help: "Percent free files (inodes) above which the cache grows freely.") var frun: Int = CachefilesdConfig()
        .frun
    @Option(help: "Percent free files below which culling starts.") var fcull: Int = CachefilesdConfig().fcull
    @Option(help: "Percent free files below which caching stops.") var fstop: Int = CachefilesdConfig().fstop
    @Option(help: "log2 of the cull table size, 12..20.") var culltable: Int?
    @Option(help: "SELinux context the kernel uses for the cache (one word).") var secctx: String?
    @Option(
        help: ArgumentHelp(
            "Blocks and files to free before culling resumes: 'BLOCKS FILES' ('-' for none).", valueName: "blocks files"
        ))
    var resumeThresholds: String?
    @Flag(help: "Never cull: the cache only grows up to the limits.") var nocull = false
    @Option(help: "Config file to write.") var config: String = "/etc/cachefilesd.conf"
    @Flag(help: "Change nothing; report what would change.") var check = false
    @Flag(help: "Show the config change as a unified diff.") var diff = false
    @OptionGroup var output: OutputOptions

    /// The same struct (and validation) `cachectl apply` uses.
    func makeConfig() throws -> CachefilesdConfig {
        var c = CachefilesdConfig()
        (c.dir, c.tag, c.brun, c.bcull, c.bstop, c.frun, c.fcull, c.fstop) = (
            dir, tag, brun, bcull, bstop, frun, fcull, fstop
        )
        (c.culltable, c.secctx, c.nocull) = (culltable, secctx, nocull)
        if let resumeThresholds {
            guard let parsed = CachefilesdConfig.ResumeThresholds(parsing: resumeThresholds) else {
                throw ValidationError(
                    "invalid resume-thresholds \(resumeThresholds.debugDescription): expected 'BLOCKS FILES', each a number or '-'"
                )
            }
            c.resumeThresholds = parsed
        }
        try c.validate()
        return c
    }

    func run() throws {
        output.bootstrap()
        let setup = CacheSetup(config: try makeConfig(), configPath: Path.absolute(config), check: check)
        let result: CacheSetup.Result
        do {
            result = try setup.run()
        } catch let refused as CacheSetup.Refused {
            try CommandOutput.finish(
                output, changed: false, failed: true, msg: "cache setup refused: \(refused)",
                data: ["findings": refused.findings]
            ) {
                "cache setup refused, nothing written:\n" + refused.findings.map(findingLine).joined(separator: "\n")
            }
            return
        }
        let msg =
            result.changed
            ? (check ? "would change: " : "") + result.actions.joined(separator: "; ")
            : "cachefilesd config up to date" + (result.daemon.map { "; \($0)" } ?? "")
        var shown = result
        if !diff { shown.diff = "" }
        try CommandOutput.finish(output, changed: result.changed, failed: false, msg: msg, data: shown) {
            var lines: [String] = []
            if diff && !result.diff.isEmpty { lines.append(result.diff) }
            lines += result.findings.filter { $0.severity != .ok }.map(findingLine)
            lines.append(msg)
            if let state = result.cacheState { lines.append("cache \(setup.config.tag): \(state)") }
            return lines.joined(separator: "\n")
        }
    }
}

struct CacheStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the cache's state, counters, hit ratio and disk usage against the thresholds.",
        discussion: """
            Reads /proc/fs/fscache/caches (state: A active, P preparing, E failed, W withdrawn), \
            /proc/fs/fscache/stats by key (IO rd/wr on 5.17+, Retrvls on older kernels), and the \
            cache directory's free space and files against brun/bcull/bstop and frun/fcull/fstop.

            The hit ratio is reads served from the cache over reads plus misses written into it.

            Examples:
              cachectl cache status
              cachectl cache status --json | jq .hit_ratio
            """
    )

    @Option(help: "cachefilesd config to read.") var config: String = "/etc/cachefilesd.conf"
    @OptionGroup var output: OutputOptions

    func run() throws {
        output.bootstrap()
        let status = CacheStatus.read(configPath: config)
        let active = status.caches.contains(where: \.isActive)
        let msg = active ? "cache active" : status.caches.isEmpty ? "no cache bound" : "cache not active"
        try CommandOutput.finish(output, changed: false, failed: false, msg: msg, data: status) {
            var lines: [String] = []
            lines.append(
                "config:   \(status.configPath)"
                    + (status.config.map {
                        " (dir \($0.dir), tag \($0.tag), brun/bcull/bstop \($0.brun)/\($0.bcull)/\($0.bstop)%)"
                    } ?? " (missing)"))
            lines.append(
                "daemon:   "
                    + (status.daemonPids.isEmpty
                        ? "cachefilesd not running"
                        : "cachefilesd pid \(status.daemonPids.map(String.init).joined(separator: ","))"))
            if status.caches.isEmpty { lines.append("caches:   none bound") }
            for cache in status.caches {
                lines.append(
                    "cache:    \(cache.name) \(cache.state) (\(cache.stateName)), \(cache.objects ?? 0) objects, \(cache.volumes ?? 0) volumes"
                )
            }
            if let usage = status.usage {
                lines.append(
                    "disk:     \(ByteSize.format(usage.availableBytes)) free of \(ByteSize.format(usage.totalBytes)) (\(formatFixed(usage.freeBytesPercent, digits: 1))%), \(formatFixed(usage.freeFilesPercent, digits: 1))% files free"
                )
            }
            lines += trafficLines(status, indent: "io:       ")
            lines += status.findings.filter { $0.severity != .ok }.map(findingLine)
            return lines.joined(separator: "\n")
        }
    }
}

/// `warning: detail (fix: ...)`.
func findingLine(_ finding: Finding) -> String {
    let mark =
        switch finding.severity {
        case .ok: "ok     "
        case .warning: "warning"
        case .error: "error  "
        }
    return "\(mark) \(finding.check): \(finding.detail)" + (finding.fix.map { "\n        fix: \($0)" } ?? "")
}

/// The cache's counters by meaning, each with its unit (pages on 6.1,
/// operations on 6.12), and the hit ratio with what it divides.
func trafficLines(_ status: CacheStatus, indent: String) -> [String] {
    guard let unit = status.unit?.rawValue, let layout = status.statsLayout?.rawValue else { return [] }
    func n(_ value: UInt64?) -> String { value.map(String.init) ?? "-" }
    var line =
        "read from cache \(n(status.cacheReads)) \(unit), written to cache \(n(status.cacheWrites)) \(unit), "
        + "from servers \(n(status.downloads)) \(unit)"
    if let lookups = status.lookups { line += ", lookups \(lookups) \(unit)" }
    var lines = [indent + line + " (\(layout) counters)"]
    let pad = String(repeating: " ", count: indent.count)
    if let ratio = status.hitRatio {
        lines.append(pad + "hit ratio \(formatFixed(ratio * 100, digits: 1))%: \(status.hitRatioBasis ?? "")")
    }
    return lines
}
