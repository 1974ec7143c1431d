import Glibc

/// Replaces files so that a reader sees the old contents or the new, never a mix,
/// and a crash leaves no half-written file: write a temp file in the same
/// directory, fsync it, rename it over the target, fsync the directory.
public enum AtomicFile {
    /// Suffix of the backup kept beside a replaced file (the version before cachectl's change).
    public static let backupSuffix = ".cachectl.bak"

    /// Writes `contents` to `path` atomically.
    ///
    /// - Parameters:
    ///   - mode: permissions of a new file; an existing file keeps its mode and owner.
    ///   - backup: keep the replaced file as `path + backupSuffix` (a hard link to the
    ///     old inode, so the backup is exactly what was there).
    /// - Returns: false when the file already had exactly these contents (nothing written).
    @discardableResult
    public static func write(
        _ contents: String, to path: String, mode: mode_t = 0o644, backup: Bool = false
    ) throws(SystemError) -> Bool {
        try write(Array(contents.utf8), to: path, mode: mode, backup: backup)
    }

    @discardableResult
    public static func write(
        _ contents: [UInt8], to path: String, mode: mode_t = 0o644, backup: Bool = false
    ) throws(SystemError) -> Bool {
        var old = stat()
        let exists = stat(path, &old) == 0
        if exists, let current = try? readBytes(path), current == contents { return false }

        let dir = Path.directory(of: path)
        let temp = dir + "/." + Path.lastComponent(of: path) + ".cachectl-tmp-\(getpid())"
        let file = try OpenFile(temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_EXCL, mode: exists ? old.st_mode & 0o7777 : mode)
        do throws(SystemError) {
            if exists {
                _ = try sys("fchmod", temp) { fchmod(file.fd, old.st_mode & 0o7777) }
                _ = try sys("fchown", temp) { fchown(file.fd, old.st_uid, old.st_gid) }
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: contents.count, alignment: 1)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: contents)
            try file.writeAll(UnsafeRawBufferPointer(buffer))
            try file.sync()
            if exists && backup {
                let backupPath = path + backupSuffix
                if unlink(backupPath) != 0 && errno != ENOENT {
                    throw SystemError("unlink", path: backupPath, errno: errno)
                }
                _ = try sys("link", backupPath) { link(path, backupPath) }
            }
            _ = try sys("rename", path) { rename(temp, path) }
        } catch {
            unlink(temp)
            throw error
        }
        try syncDirectory(dir)
        return true
    }

    /// fsync(2) on a directory, so a rename or create in it is durable.
    public static func syncDirectory(_ dir: String) throws(SystemError) {
        let handle = try OpenFile(dir, flags: O_RDONLY | O_DIRECTORY)
        try handle.sync()
    }

    /// Reads a whole (small) file.
    public static func readBytes(_ path: String) throws(SystemError) -> [UInt8] {
        let file = try OpenFile(path)
        var result: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { chunk.deallocate() }
        var offset: Int64 = 0
        while true {
            let n = try file.read(into: chunk, at: offset)
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
            offset += Int64(n)
        }
        return result
    }

    /// Reads a whole (small) text file, such as a procfs or sysfs attribute.
    public static func readText(_ path: String) throws(SystemError) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }
}

/// Path string helpers that do not touch the filesystem.
public enum Path {
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public static func join(_ base: String, _ name: String) -> String {
        base.hasSuffix("/") ? base + name : base + "/" + name
    }

    /// Makes a path absolute against the current directory, without resolving symlinks.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return join(cwd, path)
    }
}
