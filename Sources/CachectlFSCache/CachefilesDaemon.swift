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
        // -s: errors to stderr (we show them). It daemonises only after a
        // successful bind, with its stdio on /dev/null, so run() returns then.
        var arguments = ["cachefilesd", "-s", "-f", configPath]
        if configPath != "/etc/cachefilesd.conf" { arguments += ["-p", "/run/cachefilesd-cachectl.pid"] }
        let result = try ExternalCommand(arguments).run()
        guard result.succeeded else { throw bindFailure(output: result.stderr, roots: roots) }
        return running.isEmpty ? "started cachefilesd" : "restarted cachefilesd (config changed)"
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
