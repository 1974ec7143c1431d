import Glibc

/// Facts about the calling process that decide what it may do.
public enum Privileges {
    public static var isRoot: Bool { geteuid() == 0 }

    /// True when this process runs in a mount namespace split off from its
    /// ancestors' (as `unshare -m` makes), so mounts it makes cannot leak onto the
    /// machine. Tests that mount require it.
    ///
    /// Comparing with PID 1 is not enough: in a sandbox /proc/1/ns/mnt may be
    /// unreadable even for root (EACCES, seen on this project's machines). So walk
    /// up the parent chain: an ancestor in another namespace means ours was
    /// unshared below it. Ancestors we may not inspect are skipped; when none
    /// differs the answer is false, the safe side.
    public static var hasPrivateMountNamespace: Bool {
        guard let mine = mountNamespace(of: getpid()) else { return false }
        var pid = getppid()
        for _ in 0..<64 where pid > 0 {
            if let theirs = mountNamespace(of: pid), theirs != mine { return true }
            if pid == 1 { break }
            guard let parent = parentPID(of: pid) else { break }
            pid = parent
        }
        if let first = mountNamespace(of: 1) { return first != mine }
        return false
    }

    static func mountNamespace(of pid: pid_t) -> ino_t? {
        var st = stat()
        guard stat("/proc/\(pid)/ns/mnt", &st) == 0 else { return nil }
        return st.st_ino
    }

    /// The PPid: line of /proc/PID/status.
    static func parentPID(of pid: pid_t) -> pid_t? {
        guard let text = try? AtomicFile.readText("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("PPid:") {
            return pid_t(line.dropFirst(5).trimmingWhitespace())
        }
        return nil
    }
}
