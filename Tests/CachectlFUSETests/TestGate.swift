import CachectlSystem
import Glibc

/// Whether mounting here is safe: root, in a mount namespace split off from an
/// ancestor's (`unshare -m`). `Privileges.hasPrivateMountNamespace` compares with
/// PID 1, whose /proc/1/ns/mnt is unreadable (EACCES) in this machine's sandbox,
/// so this walks up the parent chain instead. (Branch `tiers` adds the same check
/// to CachectlSystem as MountNamespace.isUnshared; switch to it once merged.)
enum TestGate {
    static var canMount: Bool {
        guard Privileges.isRoot, let mine = namespace(getpid()) else { return false }
        var pid = getppid()
        for _ in 0..<64 where pid > 1 {
            if let theirs = namespace(pid), theirs != mine { return true }
            guard let status = try? AtomicFile.readText("/proc/\(pid)/status"),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
                let parent = pid_t(line.dropFirst(5).filter { !$0.isWhitespace })
            else { break }
            pid = parent
        }
        return Privileges.hasPrivateMountNamespace
    }

    static func namespace(_ pid: pid_t) -> ino_t? {
        var st = stat()
        return stat("/proc/\(pid)/ns/mnt", &st) == 0 ? st.st_ino : nil
    }
}
