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

    public enum UnmountResult: Sendable, Equatable {
        case unmounted
        case busy
    }

    /// Unmounts a mirror. Without `force`, refuses (returns .busy) while files are
    /// open in it. With `force`, detaches it and aborts the FUSE connection so
    /// readers get ENOTCONN and the daemon exits.
    public static func unmount(_ mountpoint: String, force: Bool, roots: KernelRoots = .system) throws(SystemError) -> UnmountResult {
        guard getuid() == 0 else {
            let result = try ExternalCommand(["fusermount3", "-u"] + (force ? ["-z"] : []) + [mountpoint]).run()
            if result.succeeded { return .unmounted }
            if result.stderr.contains("busy") { return .busy }
            throw SystemError.failed(
                "fusermount3 -u \(mountpoint)", path: mountpoint,
                hint: result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // The connection is named by the mount's device minor (FUSE devices are
        // anonymous, major 0). Taken from mountinfo, not stat(2): a stat on a
        // mirror whose daemon hangs would hang too.
        let connection = (try? MountTable.entry(at: mountpoint, roots: roots))?.device?.minor
        do {
            try Mounter.unmount(mountpoint, force: force)
        } catch where error.errno == EBUSY && !force {
            return .busy
        }
        if force, let connection {
            // The connection outlives a lazy unmount while files are open; abort it.
            let fd = open("\(roots.sys)/fs/fuse/connections/\(connection)/abort", O_WRONLY | O_CLOEXEC)
            if fd >= 0 {
                _ = write(fd, "1", 1)
                close(fd)
            }
        }
        return .unmounted
    }
}
