import CachectlMount
import CachectlSystem
import Glibc

/// Tells whether a path is a cachectl FUSE mount, and unmounts one. Reading
/// the mount table and umount2(2) are CachectlMount's; what is FUSE's own is
/// fusermount3 for non-root users and aborting the connection on force.
public enum FuseMountTable {
    /// The filesystem type cachectl's mirrors mount as.
    static let mirrorType = "fuse.cachectl"

    /// True when `mountpoint` is a mirror mounted by cachectl (type fuse.cachectl).
    public static func isMirror(_ mountpoint: String, roots: KernelRoots = .system) -> Bool {
        (try? MountTable.entry(at: mountpoint, roots: roots))?.fstype == mirrorType
    }

    /// True when a cachectl mirror is mounted at `mountpoint` but nothing serves it:
    /// its daemon was killed, so requests fail with ENOTCONN. Asked with statfs(2),
    /// which always goes to the daemon (stat(2) may be answered from the kernel's
    /// attribute cache for a second after the daemon died).
    public static func isDeadMirror(_ mountpoint: String, roots: KernelRoots = .system) -> Bool {
        guard isMirror(mountpoint, roots: roots) else { return false }
        var st = statvfs()
        return statvfs(mountpoint, &st) != 0 && errno == ENOTCONN
    }

    /// Lazily detaches a dead mirror (umount2 MNT_DETACH as root, `fusermount3 -u -z`
    /// otherwise), so a new one can be mounted on the same directory. Processes that
    /// still hold files of the dead mount keep getting ENOTCONN from them.
    public static func detachDead(_ mountpoint: String) throws(CachectlError) {
        guard getuid() == 0 else {
            let result = try ExternalCommand(["fusermount3", "-u", "-z", mountpoint]).run()
            guard result.succeeded else {
                throw CachectlError.failed(
                    "fusermount3 -u -z \(mountpoint)", path: mountpoint,
                    hint: result.stderr.trimmingWhitespace())
            }
            return
        }
        _ = try sys("umount", mountpoint) { umount2(mountpoint, Int32(MNT_DETACH)) }
    }

    public enum UnmountResult: Sendable, Equatable {
        case unmounted
        case busy
    }

    /// Unmounts a mirror. Without `force`, refuses (returns .busy) while files are
    /// open in it. With `force`, detaches it and aborts the FUSE connection so
    /// readers get ENOTCONN and the daemon exits.
    public static func unmount(_ mountpoint: String, force: Bool, roots: KernelRoots = .system) throws(CachectlError)
        -> UnmountResult
    {
        guard getuid() == 0 else {
            let result = try ExternalCommand(["fusermount3", "-u"] + (force ? ["-z"] : []) + [mountpoint]).run()
            if result.succeeded { return .unmounted }
            if result.stderr.contains("busy") { return .busy }
            throw CachectlError.failed(
                "fusermount3 -u \(mountpoint)", path: mountpoint,
                hint: result.stderr.trimmingWhitespace())
        }
        // The connection is named by the mount's device minor (FUSE devices are
        // anonymous, major 0). Taken from mountinfo, not stat(2): a stat on a
        // mirror whose daemon hangs would hang too.
        let connection = (try? MountTable.entry(at: mountpoint, roots: roots))?.device?.minor
        do {
            try Mounter.unmount(mountpoint, force: force)
        } catch  where error.errno == EBUSY && !force {
            return .busy
        }
        if force, let connection {
            // The connection outlives a lazy unmount while files are open; abort it.
            try? KernelAttribute.write("1", to: "\(roots.sys)/fs/fuse/connections/\(connection)/abort")
        }
        return .unmounted
    }
}
