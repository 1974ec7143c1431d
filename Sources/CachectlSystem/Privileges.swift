import Glibc

/// Facts about the calling process that decide what it may do.
public enum Privileges {
    public static var isRoot: Bool { geteuid() == 0 }

    /// True when this process has a mount namespace of its own (not PID 1's), so
    /// mounts it makes cannot leak onto the machine. Tests that mount require it.
    public static var hasPrivateMountNamespace: Bool {
        var mine = stat()
        var init1 = stat()
        guard stat("/proc/self/ns/mnt", &mine) == 0, stat("/proc/1/ns/mnt", &init1) == 0 else { return false }
        return mine.st_ino != init1.st_ino
    }
}
