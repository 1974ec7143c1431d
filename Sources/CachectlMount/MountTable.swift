import CLibMount
import CachectlSystem
import Glibc

/// Mount tables read with libmount: the live mounts (mountinfo) and fstab.
public enum MountTable {
    /// Every live mount of this process's mount namespace, in mountinfo order
    /// (a later entry for the same target is mounted over an earlier one).
    public static func mounted(mountinfo path: String = "/proc/self/mountinfo") throws(SystemError) -> [MountEntry] {
        let table = try LibMountTable(parsing: path, kind: .mountinfo)
        return table.entries()
    }

    /// The entries of an fstab file; a missing file is an empty table.
    public static func fstab(_ path: String = "/etc/fstab") throws(SystemError) -> [MountEntry] {
        guard access(path, F_OK) == 0 else { return [] }
        return try LibMountTable(parsing: path, kind: .fstab).entries()
    }

    /// The live mount at `target` (the top one when several are stacked), or nil.
    public static func entry(at target: String, roots: KernelRoots = .system) throws(SystemError) -> MountEntry? {
        mount(at: target, in: try mounted(mountinfo: roots.proc + "/self/mountinfo"))
    }

    /// The mount at `target` (the top one when several are stacked), or nil.
    public static func mount(at target: String, in entries: [MountEntry]) -> MountEntry? {
        let wanted = normalizedMountPoint(target)
        return entries.last { normalizedMountPoint($0.target) == wanted }
    }
}

/// An fstab file loaded with comments kept, edited in memory, and written back
/// atomically (temp file, fsync, rename) with a backup of the old file.
public final class FstabFile {
    public let path: String
    /// The file's text as read (empty when it did not exist).
    public let originalText: String
    private let table: LibMountTable

    public init(path: String = "/etc/fstab") throws(SystemError) {
        self.path = path
        if access(path, F_OK) == 0 {
            originalText = try AtomicFile.readText(path)
            table = try LibMountTable(parsing: path, kind: .fstab)
        } else {
            originalText = ""
            table = try LibMountTable(empty: ())
        }
    }

    public var entries: [MountEntry] { table.entries() }

    /// The first entry for `target` (the one mount(8) uses).
    public func entry(forTarget target: String) -> MountEntry? {
        let wanted = normalizedMountPoint(target)
        return entries.first { normalizedMountPoint($0.target) == wanted }
    }

    /// Replaces the options of the entry for `target`; false when there is none.
    @discardableResult
    public func setOptions(_ options: String, forTarget target: String) -> Bool {
        let wanted = normalizedMountPoint(target)
        for fs in table.filesystems() where normalizedMountPoint(string(mnt_fs_get_target(fs)) ?? "") == wanted {
            return mnt_fs_set_options(fs, options) == 0
        }
        return false
    }

    /// The table as fstab text: libmount's own writer, comments included. It
    /// normalises whitespace between fields, so an edit can reflow other lines.
    public func render() throws(SystemError) -> String {
        try table.render()
    }

    /// Writes the edited table when it differs from the file; keeps `path.cachectl.bak`.
    /// Returns false when nothing changed.
    @discardableResult
    public func write() throws(SystemError) -> Bool {
        let text = try render()
        guard text != originalText else { return false }
        return try AtomicFile.write(text, to: path, mode: 0o644, backup: true)
    }

    /// Puts `text` back (after a failed remount), atomically.
    public static func restore(_ text: String, to path: String) throws(SystemError) {
        try AtomicFile.write(text, to: path, mode: 0o644, backup: false)
    }
}

/// Owns a `libmnt_table`.
final class LibMountTable {
    enum Kind { case mountinfo, fstab }
    let table: OpaquePointer

    init(empty: Void) throws(SystemError) {
        guard let table = mnt_new_table() else { throw SystemError("mnt_new_table", errno: ENOMEM) }
        self.table = table
        mnt_table_enable_comments(table, 1)
    }

    init(parsing path: String, kind: Kind) throws(SystemError) {
        guard let table = mnt_new_table() else { throw SystemError("mnt_new_table", errno: ENOMEM) }
        self.table = table
        let rc: Int32
        switch kind {
        case .mountinfo:
            rc = mnt_table_parse_file(table, path)
        case .fstab:
            mnt_table_enable_comments(table, 1)
            rc = mnt_table_parse_fstab(table, path)
        }
        if rc != 0 {
            mnt_unref_table(table)
            // libmount returns -errno.
            throw SystemError("parse mount table", path: path, errno: rc < 0 ? -rc : EINVAL,
                              hint: kind == .fstab ? "fix the syntax of \(path) (see fstab(5))" : nil)
        }
    }

    deinit { mnt_unref_table(table) }

    func filesystems() -> [OpaquePointer] {
        guard let iterator = mnt_new_iter(Int32(MNT_ITER_FORWARD)) else { return [] }
        defer { mnt_free_iter(iterator) }
        var result: [OpaquePointer] = []
        var fs: OpaquePointer?
        while mnt_table_next_fs(table, iterator, &fs) == 0, let current = fs {
            result.append(current)
        }
        return result
    }

    func entries() -> [MountEntry] {
        filesystems().map { fs in
            let isLive = mnt_fs_get_id(fs) > 0
            let devno = mnt_fs_get_devno(fs)
            return MountEntry(
                source: string(mnt_fs_get_source(fs)) ?? "none",
                target: string(mnt_fs_get_target(fs)) ?? "",
                fstype: string(mnt_fs_get_fstype(fs)) ?? "",
                options: string(mnt_fs_get_options(fs)) ?? "",
                vfsOptions: isLive ? string(mnt_fs_get_vfs_options(fs)) ?? "" : nil,
                superOptions: isLive ? string(mnt_fs_get_fs_options(fs)) ?? "" : nil,
                device: isLive ? DeviceNumber(UInt64(devno)) : nil,
                id: isLive ? Int(mnt_fs_get_id(fs)) : nil,
                parentID: isLive ? Int(mnt_fs_get_parent_id(fs)) : nil,
                freq: isLive ? nil : Int(mnt_fs_get_freq(fs)),
                passno: isLive ? nil : Int(mnt_fs_get_passno(fs)))
        }
    }

    func render() throws(SystemError) -> String {
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else { throw SystemError("open_memstream", errno: errno) }
        let rc = mnt_table_write_file(table, stream)
        fclose(stream)
        defer { free(buffer) }
        guard rc == 0 else { throw SystemError("mnt_table_write_file", errno: rc < 0 ? -rc : EIO) }
        guard let buffer else { return "" }
        return String(cString: buffer)
    }
}

func string(_ pointer: UnsafePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}
