import CachectlSystem
import Glibc

/// One line of /proc/self/mountinfo, the fields tiers need.
public struct MountEntry: Sendable, Equatable {
    public var mountPoint: String
    public var fsType: String
    public var source: String
    /// Per-mount options and superblock options together (`rw,noatime,size=...`).
    public var options: [String]
}

/// Reads this mount namespace's mounts from /proc/self/mountinfo.
public enum MountTable {
    public static func read(roots: KernelRoots = .system) throws(SystemError) -> [MountEntry] {
        parse(try AtomicFile.readText(roots.proc + "/self/mountinfo"))
    }

    /// The mount visible at `path` (the last one stacked there), if any.
    public static func entry(at path: String, roots: KernelRoots = .system) throws(SystemError) -> MountEntry? {
        try read(roots: roots).last { $0.mountPoint == path }
    }

    /// Parses mountinfo text (proc(5)): `id parent maj:min root mountpoint opts [tags] - fstype source superopts`.
    public static func parse(_ text: String) -> [MountEntry] {
        var entries: [MountEntry] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 3 else { continue }
            let superOptions = fields.count > dash + 3 ? fields[dash + 3].split(separator: ",").map(String.init) : []
            entries.append(
                MountEntry(
                    mountPoint: unescape(fields[4]), fsType: String(fields[dash + 1]), source: unescape(fields[dash + 2]),
                    options: fields[5].split(separator: ",").map(String.init) + superOptions))
        }
        return entries
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
    static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == 0x5c, i + 3 < utf8.count,
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
}

/// mount(2) and umount2(2).
enum Mounter {
    static func mount(source: String, target: String, type: String, flags: UInt, data: String) throws(SystemError) {
        _ = try sys("mount \(type) on", target) { Glibc.mount(source, target, type, flags, data) }
    }

    static func remount(target: String, type: String, flags: UInt, data: String) throws(SystemError) {
        _ = try sys("remount", target) { Glibc.mount(nil, target, type, UInt(MS_REMOUNT) | flags, data) }
    }

    /// Unmounts `target`; a busy mount is refused unless `force`, which detaches
    /// it lazily (MNT_DETACH: it goes away once the last user closes it).
    static func unmount(_ target: String, force: Bool) throws(SystemError) {
        if Glibc.umount2(target, 0) == 0 { return }
        let code = errno
        if code == EBUSY && force {
            _ = try sys("umount", target) { Glibc.umount2(target, Int32(MNT_DETACH)) }
            return
        }
        throw SystemError(
            "umount", path: target, errno: code,
            hint: code == EBUSY
                ? "a process has files open in it (see: fuser -vm \(target)); stop it, or pass --force to detach lazily"
                : nil)
    }
}

/// Size, used and free bytes of a mounted filesystem, from statvfs(3).
public struct SpaceUsage: Codable, Sendable, Equatable {
    public var total: UInt64
    public var used: UInt64
    /// Bytes an unprivileged writer may still use (f_bavail).
    public var free: UInt64

    public static func of(_ path: String) throws(SystemError) -> SpaceUsage {
        var st = statvfs()
        _ = try sys("statvfs", path) { statvfs(path, &st) }
        let unit = UInt64(st.f_frsize)
        return SpaceUsage(
            total: UInt64(st.f_blocks) * unit, used: UInt64(st.f_blocks - st.f_bfree) * unit,
            free: UInt64(st.f_bavail) * unit)
    }
}
