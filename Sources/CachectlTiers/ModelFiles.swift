import CachectlSystem
import Glibc

/// The file operations placement is built from: copy into a tier (verified and
/// durable), swap a link atomically, remove a copy.
enum ModelFiles {
    /// Copies `source` to `relative` below `tierRoot` through a temp file beside it:
    /// preallocate (so a full tier fails at once, not half way), copy, check size
    /// and SHA-256, give it the source's owner, mode and ACL, fsync, rename, fsync
    /// the directory. With `reader`, the source is opened with that user's rights. On any failure the temp file is removed and the destination
    /// is untouched. Directories in the tier are walked without following links.
    static func copy(
        from source: String, tierRoot: String, relative: String, expectedSize: UInt64, expectedSHA256: String?,
        progress: ProgressBar?, readAs reader: (uid: uid_t, gid: gid_t)? = nil
    ) throws {
        // Before anything is written: a digest that cannot be made (no libcrypto) fails here.
        let hasher = try expectedSHA256.map { _ throws(CachectlError) in try SHA256Digest() }
        let (dir, name) = try HeldDirectory(tierRoot).parent(of: relative, create: true)
        let temp = "." + name + copySuffix + "\(getpid())"
        // Read as the user the copy is published to: a cold-store link to a file
        // that user may not read (a root-only file) is refused, not copied.
        let input =
            try reader.map { reader throws(CachectlError) in
                try FileAccess.open(source, as: reader.uid, gid: reader.gid)
            }
            ?? OpenFile(source)
        try? input.advise(POSIX_FADV_SEQUENTIAL)
        dir.remove(temp)
        let output = try dir.openFile(temp, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            if expectedSize > 0 {
                let code = posix_fallocate(output.fd, 0, off_t(expectedSize))
                if code != 0 && code != EOPNOTSUPP {
                    throw CachectlError(
                        "fallocate \(ByteSize.format(expectedSize)) for", path: output.path, errno: code)
                }
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
            defer { buffer.deallocate() }
            var offset: Int64 = 0
            while true {
                let n = try input.read(into: buffer, at: offset)
                if n == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                try hasher?.update(chunk)
                try output.writeAll(chunk)
                offset += Int64(n)
                progress?.add(UInt64(n))
            }
            guard UInt64(offset) == expectedSize else {
                throw CachectlError.failed(
                    "copy", path: source,
                    hint: "read \(offset) bytes, expected \(expectedSize): the file changed during the copy; try again")
            }
            if let hasher, let expectedSHA256 {
                let actual = try hasher.finish()
                guard actual == expectedSHA256 else {
                    throw CachectlError.failed(
                        "verify sha256 of", path: source,
                        hint:
                            "content hashes to \(actual), its name says \(expectedSHA256): the blob is corrupt; pull the model again"
                    )
                }
            }
            try FileAccess.copy(from: input, to: output)
            try output.sync()
            try dir.rename(temp, to: name)
        } catch {
            dir.remove(temp)
            throw error
        }
        try dir.sync()
    }

    /// Names of temp copies: `.NAME.cachectl-copy-PID`.
    static let copySuffix = ".cachectl-copy-"

    /// Temp copies (`.NAME.cachectl-copy-PID`) that a killed promote left below
    /// `tierRoot`: their PID is gone, or is not a cachectl process (this
    /// executable). Called under the state lock, so no live promote of this state
    /// is writing one. With `remove`, deletes them. Returns their paths.
    @discardableResult
    static func staleCopies(tierRoot: String, remove: Bool) -> [String] {
        guard let root = try? HeldDirectory(tierRoot) else { return [] }
        var found: [String] = []
        func walk(_ dir: HeldDirectory, depth: Int) {
            guard depth <= 16, let names = try? dir.entries() else { return }
            for name in names.sorted() {
                guard let st = dir.status(name) else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    if let child = try? dir.subdirectory(name) { walk(child, depth: depth + 1) }
                } else if st.st_mode & S_IFMT == S_IFREG, let pid = copyOwner(name), !isLiveCachectl(pid) {
                    found.append(dir.path + "/" + name)
                    if remove { dir.remove(name) }
                }
            }
        }
        walk(root, depth: 0)
        return found
    }

    /// The PID in a temp copy's name, nil when it is not one.
    static func copyOwner(_ name: String) -> pid_t? { pid(in: name, after: copySuffix) }

    /// Names of temp links: `.NAME.cachectl-link-PID`.
    static let linkSuffix = ".cachectl-link-"

    /// The PID in a temp link's name, nil when it is not one.
    static func tempLinkOwner(_ name: String) -> pid_t? { pid(in: name, after: linkSuffix) }

    private static func pid(in name: String, after suffix: String) -> pid_t? {
        guard name.hasPrefix("."), let dash = name.lastIndex(of: "-"), name[...dash].hasSuffix(suffix) else {
            return nil
        }
        let digits = name[name.index(after: dash)...]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return pid_t(digits)
    }

    /// Whether `pid` is another process running this same executable (a cachectl
    /// that may be mid-copy). This process is not: it holds the lock.
    static func isLiveCachectl(_ pid: pid_t) -> Bool {
        guard pid > 0, pid != getpid() else { return false }
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        guard let mine = try? Path.linkTarget(of: "/proc/self/exe"),
            let theirs = try? Path.linkTarget(of: "/proc/\(pid)/exe")
        else { return false }
        return mine == theirs
    }

    /// The target of the symlink `relative` below `modelsDir`, or nil when it is not
    /// a symlink (or a directory on the way is not a real directory).
    static func linkTarget(modelsDir: String, relative: String) -> String? {
        guard let (dir, name) = try? HeldDirectory(modelsDir).parent(of: relative) else { return nil }
        return dir.linkTarget(name)
    }

    /// Removes the symlink `relative` below `modelsDir` (nothing else, no link followed).
    static func removeLink(modelsDir: String, relative: String) {
        guard let (dir, name) = try? HeldDirectory(modelsDir).parent(of: relative),
            let st = dir.status(name), st.st_mode & S_IFMT == S_IFLNK
        else { return }
        dir.remove(name)
    }

    /// Points the symlink `relative` below `modelsDir` at `target` so that a reader
    /// opening it always finds a whole file: make a new symlink beside it, rename(2)
    /// it over the old one (atomic), fsync the directory. Never replaces anything
    /// that is not a symlink, and never follows a link on the way (the models
    /// directory's owner may have planted one). Returns false when the link
    /// already pointed there.
    @discardableResult
    static func pointLink(modelsDir: String, relative: String, to target: String) throws -> Bool {
        let (dir, name) = try HeldDirectory(modelsDir).parent(of: relative, create: true)
        if dir.linkTarget(name) == target { return false }
        if let st = dir.status(name), st.st_mode & S_IFMT != S_IFLNK {
            throw CachectlError(
                "replace", path: dir.path + "/" + name, errno: EEXIST,
                hint: "it is a real file or directory, not a link cachectl made; move it out of the models directory")
        }
        let temp = "." + name + linkSuffix + "\(getpid())"
        dir.remove(temp)
        try dir.makeLink(temp, to: target)
        do {
            try dir.rename(temp, to: name)
        } catch {
            dir.remove(temp)
            throw error
        }
        try dir.sync()
        return true
    }

    /// How long a replaced copy outlives the link swap. An open(2) that read the old
    /// link just before the rename is still walking to its target; deleting the
    /// target at once can fail that open with ENOENT (seen in the concurrent-reader
    /// test). Path walks in a tier take microseconds, so a quarter second is ample.
    static let linkGracePeriod: useconds_t = 250_000

    /// Removes copies whose links were just repointed elsewhere, after the grace
    /// period, so a reader that resolved an old link still finds its file.
    static func retireCopies(_ relatives: [String], tierRoot: String) {
        guard !relatives.isEmpty else { return }
        usleep(linkGracePeriod)
        for relative in relatives { removeCopy(relative, tierRoot: tierRoot) }
    }

    /// Removes a copy from a tier and the directories it leaves empty (up to the tier root).
    static func removeCopy(_ relative: String, tierRoot: String) {
        guard let root = try? HeldDirectory(tierRoot), let (dir, name) = try? root.parent(of: relative) else { return }
        dir.remove(name)
        var parent = Path.directory(of: relative)
        while parent != "." && parent != "/" && !parent.isEmpty {
            guard let (above, last) = try? root.parent(of: parent), above.removeDirectory(last) else { break }
            parent = Path.directory(of: parent)
        }
    }

    /// Size of a regular file (symlinks not followed), nil when there is none.
    static func regularFileSize(_ path: String) -> UInt64? {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return UInt64(st.st_size)
    }

    /// Bytes a file takes in a tier: whole pages, plus one for its inode and directory entry.
    static func footprint(_ size: UInt64) -> UInt64 {
        (size + 4095) / 4096 * 4096 + 4096
    }
}
