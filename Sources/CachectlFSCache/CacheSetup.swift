import CachectlSystem
import FoundationEssentials
import Glibc

/// `cachectl cache setup` as a library call, so `cachectl apply` runs the same
/// code with the same validation: validate, check the cache directory, write
/// the config atomically (with a backup) only when it differs, and start or
/// restart cachefilesd only when the config changed or it is not running.
public struct CacheSetup: Sendable {
    public var config: CachefilesdConfig
    public var configPath: String
    /// Change nothing; report what would change.
    public var check: Bool
    /// Start/restart cachefilesd (off for tests that only write files).
    public var manageDaemon: Bool
    public var roots: KernelRoots

    public init(
        config: CachefilesdConfig, configPath: String = "/etc/cachefilesd.conf", check: Bool = false,
        manageDaemon: Bool = true, roots: KernelRoots = .system
    ) {
        self.config = config
        self.configPath = configPath
        self.check = check
        self.manageDaemon = manageDaemon
        self.roots = roots
    }

    public struct Result: Sendable, Codable, Equatable {
        public var changed: Bool
        public var configPath: String
        public var configChanged: Bool
        public var createdDir: Bool
        /// Unified diff old → new config (empty when equal).
        public var diff: String
        public var daemon: String?
        public var cacheState: String?
        public var findings: [Finding]
        /// Steps done (with check: that would be done).
        public var actions: [String]
    }

    /// An error finding stopped setup before anything was written.
    public struct Refused: Error, CustomStringConvertible {
        public var findings: [Finding]
        public var description: String {
            findings.filter { $0.severity == .error }.map { "\($0.detail)" + ($0.fix.map { "; fix: \($0)" } ?? "") }
                .joined(separator: "\n")
        }
    }

    public func run() throws -> Result {
        try config.validate()
        let rendered = try config.render()
        let old = (try? AtomicFile.readText(configPath)) ?? ""
        let configChanged = old != rendered
        let diff = UnifiedDiff.make(old: old, new: rendered, oldLabel: configPath, newLabel: configPath + " (cachectl)")
        var result = Result(
            changed: false, configPath: configPath, configChanged: configChanged, createdDir: false, diff: diff,
            daemon: nil, cacheState: nil, findings: [], actions: [])

        // Each step goes through the log: a check records it and does nothing.
        let log = ChangeLog(check: check)
        var st = stat()
        let dirExisted = stat(config.dir, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
        if !dirExisted {
            try log.perform("create \(config.dir) (mode 0700)") { () throws(CachectlError) in
                result.createdDir = try CacheDirectory.create(config.dir)
            }
        }
        if dirExisted || !check {
            result.findings = CacheDirectory.check(config, sys: roots.sys)
            if result.findings.contains(where: { $0.severity == .error }) {
                throw Refused(findings: result.findings)
            }
        }
        let running = CachefilesDaemon.runningPIDs(proc: roots.proc)
        // Under systemd the daemon is a unit: it must run as one that systemd
        // trusts (cachectl's own where the distribution ships only a SysV
        // script) and be enabled, to come back at boot.
        let systemd = manageDaemon && Systemd.isRunning(proc: roots.proc)
        let unit = systemd ? try CachefilesdUnit.needed(configPath: configPath, etc: roots.etc) : nil
        let enable = systemd && !CachefilesDaemon.isEnabled(etc: roots.etc)
        let daemonNeeded = manageDaemon && (configChanged || running.isEmpty || unit != nil)

        if configChanged {
            try log.perform(
                "write \(configPath)" + (old.isEmpty ? "" : " (backup \(configPath)\(AtomicFile.backupSuffix))")
            ) {
                try AtomicFile.write(rendered, to: configPath, mode: 0o644, backup: true)
            }
        }
        if let unit {
            result.diff += UnifiedDiff.make(
                old: unit.old ?? "", new: unit.text, oldLabel: unit.path, newLabel: unit.path + " (cachectl)")
            try log.perform(
                "write \(unit.path)"
                    + (unit.old == nil
                        ? ": the package ships only a SysV script, which starts after remote mounts and can leave the unit failed while the daemon runs"
                        : "")
            ) {
                try AtomicFile.write(unit.text, to: unit.path, mode: 0o644, backup: false)  // cachectl's own file
                try Systemd.reload()
            }
        }
        if enable {
            try log.perform("systemctl enable cachefilesd") {
                try ExternalCommand(["systemctl", "enable", "cachefilesd"]).check(
                    hint: "is the cachefilesd package installed?")
            }
        }
        if daemonNeeded {
            try log.perform(running.isEmpty ? "start cachefilesd" : "restart cachefilesd") {
                result.daemon = try CachefilesDaemon.ensureRunning(configPath: configPath, restart: true, roots: roots)
                result.cacheState = waitForActiveCache(tag: config.tag)
            }
        } else if manageDaemon && !check {
            result.daemon =
                "cachefilesd running (pid \(running.map(String.init).joined(separator: ","))), config unchanged"
            result.cacheState = (try? FSCacheCache.read(proc: roots.proc))?.first { $0.name == config.tag }?.stateName
        }
        result.changed = log.changed
        result.actions = log.steps
        return result
    }

    /// The cache's state once the kernel lists it as active, or the last state seen after 5 s.
    private func waitForActiveCache(tag: String) -> String? {
        let deadline = Monotonic.now() + 5
        var state: String?
        while Monotonic.now() < deadline {
            if let cache = (try? FSCacheCache.read(proc: roots.proc))?.first(where: { $0.name == tag }) {
                state = cache.stateName
                if cache.isActive { return state }
            }
            usleep(100_000)
        }
        return state
    }
}
