import Glibc

/// Whether this process runs in a mount namespace that was split off from its
/// ancestors' (as `unshare -m` makes), so mounts it makes stay out of theirs.
///
/// `Privileges.hasPrivateMountNamespace` compares with PID 1, but inside a
/// sandbox /proc/1/ns/mnt may not be readable even by root (EACCES: seen on
/// this project's machines), which makes it false everywhere. This walks up
/// the parent chain instead: an ancestor in a different namespace means ours
/// was unshared below it. Ancestors we may not inspect are skipped; if none
/// differs, the answer is false (the safe side).
public enum MountNamespace {
    public static var isUnshared: Bool {
        guard let mine = namespaceInode(pid: getpid()) else { return false }
        var pid = getppid()
        var steps = 0
        while pid > 0 && steps < 64 {
            if let theirs = namespaceInode(pid: pid), theirs != mine { return true }
            if pid == 1 { break }
            guard let parent = parentPID(of: pid) else { break }
            pid = parent
            steps += 1
        }
        return Privileges.hasPrivateMountNamespace
    }

    static func namespaceInode(pid: pid_t) -> ino_t? {
        var st = stat()
        guard stat("/proc/\(pid)/ns/mnt", &st) == 0 else { return nil }
        return st.st_ino
    }

    /// The PPid: line of /proc/PID/status.
    static func parentPID(of pid: pid_t) -> pid_t? {
        guard let text = try? AtomicFile.readText("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("PPid:") {
            return pid_t(line.dropFirst(5).trimmingSpaces())
        }
        return nil
    }
}
