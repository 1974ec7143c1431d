import CachectlSystem
import Glibc

/// Reads /proc/self/mountinfo to tell whether a path is a cachectl FUSE mount,
/// and unmounts one.
public enum FuseMountTable {
    /// The filesystem type of the mount at exactly `mountpoint`, or nil.
    public static func filesystemType(at mountpoint: String, roots: KernelRoots = .system) -> String? {
        guard let text = try? AtomicFile.readText(roots.proc + "/self/mountinfo") else { return nil }
        var found: String?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 6, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            if unescape(String(fields[4])) == mountpoint { found = String(fields[dash + 1]) }
        }
        return found  // the last one wins: it is the one on top
    }

    /// True when `mountpoint` is a mirror mounted by cachectl (type fuse.cachectl).
    public static func isMirror(_ mountpoint: String, roots: KernelRoots = .system) -> Bool {
        filesystemType(at: mountpoint, roots: roots) == "fuse.cachectl"
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count,
                let value = UInt8(String(decoding: utf8[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public enum UnmountResult: Sendable, Equatable {
        case unmounted
        case busy
    }

    /// Unmounts a mirror. Without `force`, refuses (returns .busy) while files are
    /// open in it. With `force`, detaches it and aborts the FUSE connection so
    /// readers get ENOTCONN and the daemon exits.
    public static func unmount(_ mountpoint: String, force: Bool) throws(SystemError) -> UnmountResult {
        var st = stat()
        let connection: UInt64? = stat(mountpoint, &st) == 0 ? UInt64(st.st_dev) & 0xff | (UInt64(st.st_dev) >> 12) & ~0xff : nil
        if getuid() == 0 {
            if umount2(mountpoint, force ? Int32(MNT_DETACH) : 0) != 0 {
                let code = errno
                if code == EBUSY && !force { return .busy }
                throw SystemError("umount2", path: mountpoint, errno: code)
            }
            if force, let connection {
                // The connection outlives a lazy unmount while files are open; abort it.
                let fd = open("/sys/fs/fuse/connections/\(connection)/abort", O_WRONLY | O_CLOEXEC)
                if fd >= 0 {
                    _ = write(fd, "1", 1)
                    close(fd)
                }
            }
            return .unmounted
        }
        let result = try ExternalCommand(["fusermount3", "-u"] + (force ? ["-z"] : []) + [mountpoint]).run()
        if result.succeeded { return .unmounted }
        if result.stderr.contains("busy") { return .busy }
        throw SystemError.failed("fusermount3 -u \(mountpoint)", path: mountpoint, hint: result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
