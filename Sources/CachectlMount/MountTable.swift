import CCachectlMount
import CachectlSystem
import Glibc

/// Mount tables read with libmount: the live mounts (mountinfo) and fstab.
public enum MountTable {
    /// Every live mount of this process's mount namespace, in mountinfo order
    /// (a later entry for the same target is mounted over an earlier one).
    public static func mounted(mountinfo path: String = "/proc/self/mountinfo") throws(CachectlError) -> [MountEntry] {
        let table = try LibMountTable(parsing: path, kind: .mountinfo)
        return table.entries()
    }

    /// The entries of an fstab file; a missing file is an empty table.
    public static func fstab(_ path: String = "/etc/fstab") throws(CachectlError) -> [MountEntry] {
        guard access(path, F_OK) == 0 else { return [] }
        return try LibMountTable(parsing: path, kind: .fstab).entries()
    }

    /// The live mount at `target` (the top one when several are stacked), or nil.
    public static func entry(at target: String, roots: KernelRoots = .system) throws(CachectlError) -> MountEntry? {
        mount(at: target, in: try mounted(mountinfo: roots.proc + "/self/mountinfo"))
    }

    /// The mount at `target` (the top one when several are stacked), or nil.
    public static func mount(at target: String, in entries: [MountEntry]) -> MountEntry? {
        let wanted = normalizedMountPoint(target)
        return entries.last { normalizedMountPoint($0.target) == wanted }
    }
}

/// An fstab file edited line by line: an edit replaces the options field of
/// one entry and nothing else, so every other byte (comments, blank lines, the
/// whitespace and tabs between fields, other entries) stays as it was. It is
/// written back atomically (temp file, fsync, rename) with a backup of the old
/// file. Read-modify-write runs under ``withLock(_:_:)``.
public final class FstabFile {
    public let path: String
    /// The file as read (empty when it did not exist). Edits work on bytes,
    /// so bytes that are not UTF-8 (a Latin-1 comment) stay as they were.
    public let originalBytes: [UInt8]
    /// The file with the edits made so far.
    public private(set) var bytes: [UInt8]
    private let table: LibMountTable

    /// The file's text as read (for diffs and display).
    public var originalText: String { String(decoding: originalBytes, as: UTF8.self) }
    /// The text with the edits made so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public init(path: String = "/etc/fstab") throws(CachectlError) {
        self.path = path
        if access(path, F_OK) == 0 {
            originalBytes = try AtomicFile.readBytes(path)
            table = try LibMountTable(parsing: path, kind: .fstab)
        } else {
            originalBytes = []
            table = try LibMountTable(empty: ())
        }
        bytes = originalBytes
    }

    public var entries: [MountEntry] { table.entries() }

    /// The first entry for `target` (the one mount(8) uses).
    public func entry(forTarget target: String) -> MountEntry? {
        let wanted = normalizedMountPoint(target)
        return entries.first { normalizedMountPoint($0.target) == wanted }
    }

    /// Replaces the options of the first entry for `target` in place (only
    /// that field's bytes change); false when there is no such entry.
    @discardableResult
    public func setOptions(_ options: String, forTarget target: String) -> Bool {
        var lines = FstabText.lines(bytes)
        guard let index = lines.firstIndex(where: { $0.targetMatches(target) }) else { return false }
        lines[index].setOptions(options)
        bytes = lines.flatMap(\.bytes)
        let wanted = normalizedMountPoint(target)
        for fs in table.filesystems() where normalizedMountPoint(string(cachectl_mnt_fs_get_target(fs)) ?? "") == wanted
        {
            cachectl_mnt_fs_set_options(fs, options)
            break
        }
        return true
    }

    /// The options field (unescaped) of the first entry for `target` in fstab `bytes`.
    static func entryOptions(in bytes: [UInt8], forTarget target: String) -> String? {
        guard let line = FstabText.lines(bytes).first(where: { $0.targetMatches(target) }) else { return nil }
        return line.field(3).map(FstabText.unescape) ?? ""
    }

    /// The edited file's text.
    public func render() throws(CachectlError) -> String { text }

    /// Unified diff of the edit (only the changed entries, no context), secrets masked.
    public func diff(oldLabel: String? = nil, newLabel: String? = nil) -> String {
        MountSecrets.redact(
            UnifiedDiff.make(
                old: originalText, new: text, oldLabel: oldLabel ?? path, newLabel: newLabel ?? path + " (cachectl)",
                context: 0))
    }

    /// Writes the edited file when it differs from what was read; keeps `path.cachectl.bak`.
    /// Returns false when nothing changed.
    @discardableResult
    public func write(backup: Bool = true) throws(CachectlError) -> Bool {
        guard bytes != originalBytes else { return false }
        return try AtomicFile.write(bytes, to: path, mode: 0o644, backup: backup)
    }

    /// Puts `text` back (after a failed remount), atomically.
    public static func restore(_ text: String, to path: String) throws(CachectlError) {
        try AtomicFile.write(text, to: path, mode: 0o644, backup: false)
    }

    /// Runs `body` holding the fstab lock: flock(2) on `path.lock`, the lock
    /// file libmount (2.39 and later) takes for a table it updates, which the
    /// kernel releases when the process dies (no stale lock after SIGKILL).
    /// Two cachectl runs editing different entries therefore never lose
    /// each other's edit: each reads the file only once it holds the lock.
    public static func withLock<T>(_ path: String, _ body: () throws(CachectlError) -> T) throws(CachectlError) -> T {
        let lockPath = path + ".lock"
        let fd = retryingEINTR { open(lockPath, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644) }
        if fd < 0 {
            let code = errno
            // A read-only /etc: nobody can edit fstab, so there is nothing to serialise.
            if code == EROFS { return try body() }
            throw CachectlError(
                "open", path: lockPath, errno: code, hint: "cachectl locks \(path) with \(lockPath) while it edits it")
        }
        defer { close(fd) }  // closing the descriptor releases the lock
        _ = try sys("flock", lockPath) { flock(fd, LOCK_EX) }
        return try body()
    }
}

/// fstab as lines of bytes, each with its fields located, for in-place edits.
enum FstabText {
    struct Line {
        /// The line with its newline (the last line may lack one).
        var bytes: [UInt8]
        /// Byte ranges of the whitespace-separated fields; empty for comments and blank lines.
        var fields: [Range<Int>]

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            var fields: [Range<Int>] = []
            var i = 0
            while i < bytes.count {
                while i < bytes.count && Self.isSpace(bytes[i]) { i += 1 }
                guard i < bytes.count else { break }
                if fields.isEmpty && bytes[i] == UInt8(ascii: "#") { break }
                let start = i
                while i < bytes.count && !Self.isSpace(bytes[i]) { i += 1 }
                fields.append(start..<i)
            }
            self.fields = fields
        }

        static func isSpace(_ c: UInt8) -> Bool {
            c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r")
        }

        func field(_ index: Int) -> String? {
            guard index < fields.count else { return nil }
            return String(decoding: bytes[fields[index]], as: UTF8.self)
        }

        func targetMatches(_ target: String) -> Bool {
            guard fields.count >= 3, let raw = field(1) else { return false }
            return normalizedMountPoint(FstabText.unescape(raw)) == normalizedMountPoint(target)
        }

        /// Replaces the options field (or adds it after the type field).
        mutating func setOptions(_ options: String) {
            if let raw = field(3), FstabText.unescape(raw) == options { return }
            var edited = bytes
            let escaped = Array(FstabText.escape(options).utf8)
            if fields.count >= 4 {
                edited.replaceSubrange(fields[3], with: escaped)
            } else {
                edited.replaceSubrange(fields[2].upperBound..<fields[2].upperBound, with: [UInt8(ascii: " ")] + escaped)
            }
            self = Line(edited)
        }
    }

    /// Splits after each newline; the last line may lack one.
    static func lines(_ bytes: [UInt8]) -> [Line] {
        var result: [Line] = []
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            result.append(Line(Array(bytes[start...index])))
            start = index + 1
        }
        if start < bytes.count { result.append(Line(Array(bytes[start...]))) }
        return result
    }

    /// fstab(5)'s octal escapes (`\040` for a space).
    static func unescape(_ field: String) -> String {
        let bytes = Array(field.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count {
                let digits = bytes[(i + 1)..<(i + 4)]
                if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                    let value = digits.reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
                    if value <= 255 {
                        out.append(UInt8(value))
                        i += 4
                        continue
                    }
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case " ": out += "\\040"
            case "\t": out += "\\011"
            case "\n": out += "\\012"
            case "\\": out += "\\134"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

/// Owns a `libmnt_table`.
final class LibMountTable {
    enum Kind { case mountinfo, fstab }
    let table: OpaquePointer

    init(empty: Void) throws(CachectlError) {
        guard let table = cachectl_mnt_new_table() else { throw CachectlError("mnt_new_table", errno: ENOMEM) }
        self.table = table
        cachectl_mnt_table_enable_comments(table, 1)
    }

    init(parsing path: String, kind: Kind) throws(CachectlError) {
        guard let table = cachectl_mnt_new_table() else { throw CachectlError("mnt_new_table", errno: ENOMEM) }
        self.table = table
        let rc: Int32
        switch kind {
        case .mountinfo:
            rc = cachectl_mnt_table_parse_file(table, path)
        case .fstab:
            cachectl_mnt_table_enable_comments(table, 1)
            rc = cachectl_mnt_table_parse_fstab(table, path)
        }
        if rc != 0 {
            // No mnt_unref_table here: `self` is fully initialized, so throwing runs
            // deinit, which unrefs it (a second unref here freed it twice).
            // libmount returns -errno.
            throw CachectlError(
                "parse mount table", path: path, errno: rc < 0 ? -rc : EINVAL,
                hint: kind == .fstab ? "fix the syntax of \(path) (see fstab(5))" : nil)
        }
    }

    deinit { cachectl_mnt_unref_table(table) }

    func filesystems() -> [OpaquePointer] {
        guard let iterator = cachectl_mnt_new_iter(Int32(MNT_ITER_FORWARD)) else { return [] }
        defer { cachectl_mnt_free_iter(iterator) }
        var result: [OpaquePointer] = []
        var fs: OpaquePointer?
        while cachectl_mnt_table_next_fs(table, iterator, &fs) == 0, let current = fs {
            result.append(current)
        }
        return result
    }

    func entries() -> [MountEntry] {
        filesystems().map { fs in
            let isLive = cachectl_mnt_fs_get_id(fs) > 0
            let devno = cachectl_mnt_fs_get_devno(fs)
            return MountEntry(
                source: string(cachectl_mnt_fs_get_source(fs)) ?? "none",
                target: string(cachectl_mnt_fs_get_target(fs)) ?? "",
                fstype: string(cachectl_mnt_fs_get_fstype(fs)) ?? "",
                options: string(cachectl_mnt_fs_get_options(fs)) ?? "",
                vfsOptions: isLive ? string(cachectl_mnt_fs_get_vfs_options(fs)) ?? "" : nil,
                superOptions: isLive ? string(cachectl_mnt_fs_get_fs_options(fs)) ?? "" : nil,
                device: isLive ? DeviceNumber(UInt64(devno)) : nil,
                id: isLive ? Int(cachectl_mnt_fs_get_id(fs)) : nil,
                parentID: isLive ? Int(cachectl_mnt_fs_get_parent_id(fs)) : nil,
                freq: isLive ? nil : Int(cachectl_mnt_fs_get_freq(fs)),
                passno: isLive ? nil : Int(cachectl_mnt_fs_get_passno(fs)))
        }
    }
}

func string(_ pointer: UnsafePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}
