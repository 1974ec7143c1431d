import Glibc

/// Replaces files so that a reader sees the old contents or the new, never a mix,
/// and a crash leaves no half-written file: write a temp file in the same
/// directory, fsync it, rename it over the target, fsync the directory.
public enum AtomicFile {
    /// Suffix of the backup kept beside a replaced file (the version before cachectl's change).
    public static let backupSuffix = ".cachectl.bak"

    /// Writes `contents` to `path` atomically.
    ///
    /// A `path` that is a symlink (say /etc/fstab → /data/etc/fstab) is
    /// followed and its target replaced, so the link stays a link. Only links
    /// owned by root or by the caller are followed: anything else is refused
    /// rather than letting another user aim root's write.
    ///
    /// - Parameters:
    ///   - mode: permissions of a new file; an existing file keeps its mode and owner.
    ///   - backup: keep the replaced contents as `path + backupSuffix`: a copy owned
    ///     like the old file, readable by its owner only (the old mode & 0600), since
    ///     a config file may hold secrets; it never exists with a wider mode.
    /// - Returns: false when the file already had exactly these contents (nothing written).
    @discardableResult
    public static func write(
        _ contents: String, to path: String, mode: mode_t = 0o644, backup: Bool = false
    ) throws(CachectlError) -> Bool {
        try write(Array(contents.utf8), to: path, mode: mode, backup: backup)
    }

    @discardableResult
    public static func write(
        _ contents: [UInt8], to path: String, mode: mode_t = 0o644, backup: Bool = false
    ) throws(CachectlError) -> Bool {
        let target = try resolvingSymlinks(path)
        var old = stat()
        let exists = stat(target, &old) == 0
        let current: [UInt8]? = exists ? try readBytes(target) : nil
        if let current, current == contents { return false }

        if let current, backup {
            try replace(path + backupSuffix, with: current, mode: old.st_mode & 0o600, owner: (old.st_uid, old.st_gid))
        }
        try replace(
            target, with: contents, mode: exists ? old.st_mode & 0o7777 : mode,
            owner: exists ? (old.st_uid, old.st_gid) : nil)
        return true
    }

    /// temp file (created with `mode`, then owned by `owner`) + fsync + rename + fsync of the directory.
    /// `path` itself is replaced, never followed.
    static func replace(_ path: String, with contents: [UInt8], mode: mode_t, owner: (uid_t, gid_t)?)
        throws(CachectlError)
    {
        let dir = Path.directory(of: path)
        let unique = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let temp = dir + "/." + Path.lastComponent(of: path) + ".cachectl-tmp-\(getpid())-\(unique)"
        let file = try OpenFile(temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW, mode: mode & 0o600)
        do throws(CachectlError) {
            if let owner {
                _ = try sys("fchown", temp) { fchown(file.fd, owner.0, owner.1) }
            }
            // After fchown (which clears setuid/setgid bits), and never wider than asked.
            _ = try sys("fchmod", temp) { fchmod(file.fd, mode & 0o7777) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: contents.count, alignment: 1)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: contents)
            try file.writeAll(UnsafeRawBufferPointer(buffer))
            try file.sync()
            _ = try sys("rename", path) { rename(temp, path) }
        } catch {
            unlink(temp)
            throw error
        }
        try syncDirectory(dir)
    }

    /// The file a write to `path` should replace: symlinks followed (up to 40,
    /// as the kernel does), each one owned by root or the caller.
    public static func resolvingSymlinks(_ path: String) throws(CachectlError) -> String {
        var current = path
        for _ in 0..<40 {
            var st = stat()
            guard lstat(current, &st) == 0, st.st_mode & S_IFMT == S_IFLNK else { return current }
            guard st.st_uid == 0 || st.st_uid == geteuid() else {
                throw CachectlError.failed(
                    "refusing to write through the symlink", path: current,
                    hint:
                        "it is owned by uid \(st.st_uid), neither root nor the caller; point cachectl at the file itself"
                )
            }
            let link = try Path.linkTarget(of: current)
            current = link.hasPrefix("/") ? link : Path.join(Path.directory(of: current), link)
        }
        throw CachectlError("resolve symlinks", path: path, errno: ELOOP)
    }

    /// fsync(2) on a directory, so a rename or create in it is durable.
    public static func syncDirectory(_ dir: String) throws(CachectlError) {
        let handle = try OpenFile(dir, flags: O_RDONLY | O_DIRECTORY)
        try handle.sync()
    }

    /// Reads a whole (small) file.
    public static func readBytes(_ path: String) throws(CachectlError) -> [UInt8] {
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
    public static func readText(_ path: String) throws(CachectlError) -> String {
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
