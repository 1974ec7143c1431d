import CachectlMount
import CachectlSystem
import FoundationEssentials
import Glibc

/// Starts cachefilesd: through systemd when PID 1 is systemd, otherwise by
/// running it directly (containers, the VM test bed), and explains a failed
/// bind with the kernel's own words.
public enum CachefilesDaemon {
    /// PIDs of running cachefilesd processes.
    public static func runningPIDs(proc: String = "/proc") -> [Int32] {
        Processes.named("cachefilesd", proc: proc)
    }

    /// Makes sure the daemon runs with `configPath`; restarts it when `restart`.
    /// Returns what it did, in words.
    public static func ensureRunning(configPath: String, restart: Bool, roots: KernelRoots = .system)
        throws(CachectlError) -> String
    {
        let running = runningPIDs(proc: roots.proc)
        if !running.isEmpty && !restart {
            return "cachefilesd already running (pid \(running.map(String.init).joined(separator: ",")))"
        }
        try loadModule(dev: roots.dev)
        if Systemd.isRunning(proc: roots.proc) {
            // The caller enables the unit (CacheSetup: only when it is not).
            // A daemon the unit left behind still holds /dev/cachefiles, and
            // `systemctl restart` of a failed unit does not stop it (Debian's
            // script marks the unit failed while its daemon runs): stop it first.
            let active =
                (try? ExternalCommand(["systemctl", "is-active", "--quiet", "cachefilesd"]).run())?.succeeded ?? false
            let leftovers = running.filter { unitOf($0, proc: roots.proc) == "cachefilesd.service" }
            if !active && !leftovers.isEmpty { try stop(leftovers, proc: roots.proc) }
            let result = try ExternalCommand(["systemctl", "restart", "cachefilesd"]).run()
            // A unit can "succeed" and leave no daemon (Debian's script without
            // RUN=yes exits 0): only a running cachefilesd counts.
            let deadline = Monotonic.now() + 5
            while result.succeeded && runningPIDs(proc: roots.proc).isEmpty && Monotonic.now() < deadline {
                usleep(100_000)
            }
            guard result.succeeded, !runningPIDs(proc: roots.proc).isEmpty else {
                let journal =
                    (try? ExternalCommand(["journalctl", "-u", "cachefilesd", "-n", "15", "--no-pager", "-o", "cat"])
                        .run().stdout) ?? ""
                let said =
                    result.succeeded ? "systemctl restart cachefilesd succeeded but no cachefilesd runs" : result.stderr
                throw bindFailure(output: said + "\ncachefilesd.service's journal: " + journal, roots: roots)
            }
            return "restarted cachefilesd.service"
        }
        if !running.isEmpty { try stop(running, proc: roots.proc) }
        try startSupervised(configPath: configPath, roots: roots)
        return running.isEmpty ? "started cachefilesd" : "restarted cachefilesd (config changed)"
    }

    /// Where cachefilesd started without systemd writes its messages (this boot's).
    public static let logPath = "/run/cachectl/cachefilesd.log"

    /// Without systemd, cachectl does what its unit does under systemd: keep the
    /// daemon's words (daemonised, cachefilesd sends them to syslog, often absent
    /// there, or with -s to /dev/null) and start it again when a signal kills it
    /// (Restart=on-abnormal: Debian's 0.10.10 aborts now and then, below). So
    /// `cachectl cache supervise` runs in a session of its own and runs
    /// cachefilesd in the foreground under it; this waits until the cache is
    /// bound, or the supervisor exits (a failed bind: cachefilesd's message is
    /// the error), or 10 s pass. Bound: the kernel lists the cache (its tag) as
    /// active; kernels before 5.17 have no such list, and there cachefilesd's own
    /// "Bound cache", written right after the bind, is the sign.
    static func startSupervised(configPath: String, roots: KernelRoots) throws(CachectlError) {
        let executable = try Path.linkTarget(of: "/proc/self/exe")
        let tag = CachefilesdConfig.parse((try? AtomicFile.readText(configPath)) ?? "").tag
        close(try openLog(logPath, truncate: true))  // this daemon's words only; the supervisor appends
        let pid = try Spawn.start(
            executable, arguments: ["cache", "supervise", "--config", configPath],
            descriptors: [0: .null(O_RDONLY), 1: .null(O_WRONLY), 2: .null(O_WRONLY)], detach: .session)
        let deadline = Monotonic.now() + 10
        while true {
            var status: Int32 = 0
            let said = (try? AtomicFile.readText(logPath)) ?? ""
            if retryingEINTR({ waitpid(pid, &status, WNOHANG) }) == pid {
                throw bindFailure(output: said.isEmpty ? "exited with status \(status)" : said, roots: roots)
            }
            if let caches = try? FSCacheCache.read(proc: roots.proc) {
                if caches.contains(where: { $0.name == tag && $0.isActive }) { return }
            } else if said.contains("Bound cache") {
                return
            }
            if Monotonic.now() >= deadline {
                kill(-pid, SIGTERM)  // the supervisor's group: it and its cachefilesd
                _ = retryingEINTR { waitpid(pid, &status, 0) }
                throw CachectlError.failed(
                    "cachefilesd did not bind the cache \(tag) within 10 s",
                    hint: "see \(logPath) and the kernel log (dmesg | grep -i cachefiles)")
            }
            usleep(20_000)
        }
    }

    /// `cachectl cache supervise`: runs `cachefilesd -n -s -f configPath` with its
    /// stderr appended to `logPath` and starts it again, 0.2 s later, when a signal other
    /// than SIGTERM, SIGINT, SIGHUP or SIGPIPE ends it (systemd's on-abnormal),
    /// at most 5 times in 60 s. Returns the exit status to leave with: the
    /// daemon's own when it exits (stopped, or a config or bind error).
    ///
    /// Why: Debian's cachefilesd 0.10.10 was killed by SIGABRT in a 6.12 test
    /// guest, and died unexplained in a 6.1 one (its messages went to /dev/null).
    /// Its one abort() is a cull-table check, `((long)entry & 0xf0000000) ==
    /// 0x60000000`, a test for its 32-bit poison bytes that a 64-bit heap
    /// address passes when ASLR puts the heap there.
    public static func supervise(configPath: String, daemon: String? = nil, log: String = logPath) -> Int32 {
        guard let executable = daemon ?? ExternalCommand.find("cachefilesd") else {
            note("cachectl: cachefilesd is not installed (Debian: apt install cachefilesd)", log: log)
            return 1
        }
        var restarts: [Double] = []
        while true {
            guard let logFd = try? openLog(log, truncate: false) else { return 1 }
            let spawned = try? Spawn.start(
                executable, arguments: ["-n", "-s", "-f", configPath],
                descriptors: [0: .null(O_RDONLY), 1: .null(O_WRONLY), 2: .inherit(logFd)], detach: .sameGroup)
            close(logFd)
            guard let pid = spawned else { return 1 }
            var status: Int32 = 0
            _ = retryingEINTR { waitpid(pid, &status, 0) }
            let signal = status & 0x7f
            guard signal != 0, ![SIGTERM, SIGINT, SIGHUP, SIGPIPE].contains(signal) else {
                return signal != 0 ? 128 + signal : (status >> 8) & 0xff
            }
            let now = Monotonic.now()
            restarts = restarts.filter { now - $0 < 60 } + [now]
            guard restarts.count <= 5 else {
                note(
                    "cachectl: cachefilesd was killed by signal \(signal) 6 times within 60 s; not starting it again",
                    log: log)
                return 128 + signal
            }
            note(
                "cachectl: cachefilesd (pid \(pid)) was killed by signal \(signal); starting it again",
                log: log)
            usleep(200_000)
        }
    }

    /// One line of the supervisor's own in the log.
    static func note(_ line: String, log: String) {
        guard let fd = try? openLog(log, truncate: false) else { return }
        _ = (line + "\n").withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// The log (truncated, or appended to), in /run/cachectl, never through a link.
    static func openLog(_ path: String, truncate: Bool) throws(CachectlError) -> Int32 {
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw CachectlError("create directory", path: directory, errno: errno)
        }
        let fd = open(
            path, O_WRONLY | O_CREAT | (truncate ? O_TRUNC : O_APPEND) | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CachectlError("open cachefilesd's log", path: path, errno: errno) }
        return fd
    }

    /// The systemd unit whose cgroup holds `pid` (the last component of its cgroup v2 path).
    static func unitOf(_ pid: Int32, proc: String) -> String? {
        guard let text = try? AtomicFile.readText("\(proc)/\(pid)/cgroup"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        return line.split(separator: "/").last.map(String.init)
    }

    /// /dev/cachefiles appears when the cachefiles module is loaded.
    static func loadModule(dev: String) throws(CachectlError) {
        if access(dev + "/cachefiles", F_OK) == 0 { return }
        let result = try? ExternalCommand(["modprobe", "cachefiles"]).run()
        if access(dev + "/cachefiles", F_OK) == 0 { return }
        throw CachectlError(
            "cachefiles kernel module", path: dev + "/cachefiles", errno: ENOENT,
            hint: "modprobe cachefiles failed" + (result.map { ": " + $0.stderr.trimmingWhitespace() } ?? "")
                + "; this kernel needs CONFIG_CACHEFILES (Debian: the linux-image package has it; cloud kernels may not)"
        )
    }

    static func stop(_ pids: [Int32], proc: String) throws(CachectlError) {
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Monotonic.now() + 10
        while Monotonic.now() < deadline {
            if pids.allSatisfy({ access("\(proc)/\($0)", F_OK) != 0 }) { return }
            usleep(50_000)
        }
        throw CachectlError.failed(
            "cachefilesd (pid \(pids)) did not exit within 10 s of SIGTERM",
            hint: "kill it by hand, then run cachectl cache setup again")
    }

    /// Turns cachefilesd's complaint into the reason and the next step.
    static func bindFailure(output: String, roots: KernelRoots) -> CachectlError {
        let text = output.trimmingWhitespace()
        let kernel = kernelMessages(dev: roots.dev).suffix(5).joined(separator: " | ")
        var hint: String
        if text.contains("errno 16") || text.contains("Device or resource busy") {
            hint =
                "/dev/cachefiles is busy: another cachefilesd already holds a cache (one daemon per tag); stop it (pid \(runningPIDs(proc: roots.proc))) or use another --tag"
        } else if text.contains("No such file or directory") && text.contains("/dev/cachefiles") {
            hint = "the cachefiles module is not loaded: modprobe cachefiles"
        } else if text.contains("errno 95") || text.contains("Operation not supported") {
            hint = "the cache filesystem lacks what cachefiles needs (user xattrs, tmpfile, SEEK_DATA): use ext4 or xfs"
        } else if text.contains("errno 13") || text.contains("Permission denied") {
            hint = "permission denied: run as root; with SELinux, label the cache dir cachefiles_var_t"
        } else if text.contains("errno 2") {
            hint = "the cache directory or a config file is missing"
        } else {
            hint = "see cachefilesd's message above"
        }
        if !kernel.isEmpty { hint += "; kernel says: \(kernel)" }
        return CachectlError.failed(
            "cachefilesd failed to bind the cache: \(text.isEmpty ? "(no message)" : text)", hint: hint)
    }

    /// Recent kernel log lines about cachefiles/fscache, from /dev/kmsg.
    public static func kernelMessages(dev: String = "/dev") -> [String] {
        let fd = open(dev + "/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EPIPE { continue }  // a record was overwritten while reading
            guard n > 0 else { break }
            let record = String(decoding: buffer[0..<n], as: UTF8.self)
            guard let semicolon = record.firstIndex(of: ";") else { continue }
            let message = record[record.index(after: semicolon)...].split(separator: "\n").first.map(String.init) ?? ""
            let lower = message.lowercased()
            if lower.contains("cachefiles") || lower.contains("fscache") { lines.append(message) }
        }
        return lines
    }
}
