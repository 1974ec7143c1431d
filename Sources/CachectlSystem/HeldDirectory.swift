import Glibc

/// An open directory that names below it are resolved against, one component at a
/// time with openat(2) O_NOFOLLOW|O_DIRECTORY, so no symlink below it is followed.
///
/// Root uses this in trees another user controls (the models directory belongs to
/// the ollama user): whatever that user swaps in between two calls, root's
/// mkdirat/symlinkat/renameat/unlinkat land in the directory it opened, never at
/// the end of a link the user planted. The root itself is opened as given (the
/// administrator chose that path); only what is below it is distrusted.
public final class HeldDirectory: Sendable {
    public let fd: Int32
    /// For messages only: the path this was opened as.
    public let path: String

    /// Opens `path` as a directory (following links in the path itself).
    public init(_ path: String) throws(CachectlError) {
        self.path = path
        self.fd = try sys("open directory", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Opens the directory `relative` below this one without following any
    /// symlink on the way (ELOOP/ENOTDIR when one is there). With `create`,
    /// missing components are made with `mode` (mkdirat, no link followed).
    public func subdirectory(_ relative: String, create: Bool = false, mode: mode_t = 0o755) throws(CachectlError)
        -> HeldDirectory
    {
        let components = try Self.components(relative)
        var current = HeldDirectory(fd: try sys("dup", path) { fcntl(fd, F_DUPFD_CLOEXEC, 0) }, path: path)
        for name in components {
            let next = current.path + "/" + name
            var child = retryingEINTR { openat(current.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if child < 0 && errno == ENOENT && create {
                if mkdirat(current.fd, name, mode) != 0 && errno != EEXIST {
                    throw CachectlError("mkdir", path: next, errno: errno)
                }
                child = retryingEINTR { openat(current.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            }
            if child < 0 {
                let code = errno
                if code == ELOOP || code == ENOTDIR {
                    throw CachectlError(
                        "open directory", path: next, errno: code,
                        hint: "it is a symlink or not a directory; cachectl does not follow links below \(path): "
                            + "replace it with a real directory")
                }
                throw CachectlError("open directory", path: next, errno: code)
            }
            current = HeldDirectory(fd: child, path: next)
        }
        return current
    }

    /// The parent directory of `relative` (opened as ``subdirectory(_:create:mode:)``)
    /// and the last component's name.
    public func parent(of relative: String, create: Bool = false, mode: mode_t = 0o755) throws(CachectlError) -> (
        directory: HeldDirectory, name: String
    ) {
        var components = try Self.components(relative)
        guard let name = components.popLast() else {
            throw CachectlError("resolve", path: path + "/" + relative, errno: EINVAL, hint: "an empty name")
        }
        return (try subdirectory(components.joined(separator: "/"), create: create, mode: mode), name)
    }

    /// The names in this directory, without `.` and `..`.
    public func entries() throws(CachectlError) -> [String] {
        let copy = try sys("dup", path) { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
        guard let dir = fdopendir(copy) else {
            let code = errno
            close(copy)
            throw CachectlError("opendir", path: path, errno: code)
        }
        defer { closedir(dir) }
        rewinddir(dir)
        return Path.names(in: dir)
    }

    /// lstat of `name` in this directory (links not followed); nil when it is not there.
    public func status(_ name: String) -> stat? {
        var st = stat()
        return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st : nil
    }

    /// The target of the symlink `name`, or nil when it is not a symlink.
    public func linkTarget(_ name: String) -> String? {
        Path.readingLink { readlinkat(fd, name, $0, $1) }
    }

    /// symlinkat(2): a new link `name` → `target` in this directory.
    public func makeLink(_ name: String, to target: String) throws(CachectlError) {
        _ = try sys("symlink", path + "/" + name) { symlinkat(target, fd, name) }
    }

    /// renameat(2) within this directory.
    public func rename(_ from: String, to: String) throws(CachectlError) {
        _ = try sys("rename", path + "/" + to) { renameat(fd, from, fd, to) }
    }

    /// unlinkat(2) of a non-directory; false when it failed (it was not there).
    @discardableResult
    public func remove(_ name: String) -> Bool {
        unlinkat(fd, name, 0) == 0
    }

    /// rmdir of the empty subdirectory `name`; false when it failed.
    @discardableResult
    public func removeDirectory(_ name: String) -> Bool {
        unlinkat(fd, name, AT_REMOVEDIR) == 0
    }

    /// openat(2) of `name` in this directory with O_NOFOLLOW added.
    public func openFile(_ name: String, flags: Int32, mode: mode_t = 0) throws(CachectlError) -> OpenFile {
        let descriptor = try sys("open", path + "/" + name) { openat(fd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode) }
        return OpenFile(adopting: descriptor, path: path + "/" + name)
    }

    /// fsync(2) of the directory, so renames and new entries in it are durable.
    public func sync() throws(CachectlError) {
        _ = try sys("fsync", path) { fsync(fd) }
    }

    /// The names of a relative path; `..` and empty names are refused, `.` skipped.
    static func components(_ relative: String) throws(CachectlError) -> [String] {
        var names: [String] = []
        for part in relative.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                throw CachectlError(
                    "resolve", path: relative, errno: EINVAL,
                    hint: "'..' is not allowed in a path below a held directory")
            }
            names.append(String(part))
        }
        return names
    }
}
