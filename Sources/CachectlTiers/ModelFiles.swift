import CachectlSystem
import Glibc

/// The file operations placement is built from: copy into a tier (verified and
/// durable), swap a link atomically, remove a copy.
enum ModelFiles {
    /// Copies `source` to `destination` through a temp file beside it: preallocate
    /// (so a full tier fails at once, not half way), copy, check size and SHA-256,
    /// fsync, rename, fsync the directory. On any failure the temp file is removed
    /// and `destination` is untouched.
    static func copy(
        from source: String, to destination: String, expectedSize: UInt64, expectedSHA256: String?,
        progress: ProgressBar?
    ) throws {
        let dir = Path.directory(of: destination)
        try Path.makeDirectory(dir)
        let temp = dir + "/." + Path.lastComponent(of: destination) + ".cachectl-copy-\(getpid())"
        let input = try OpenFile(source)
        try? input.advise(POSIX_FADV_SEQUENTIAL)
        let output = try OpenFile(temp, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        do {
            if expectedSize > 0 {
                let code = posix_fallocate(output.fd, 0, off_t(expectedSize))
                if code != 0 && code != EOPNOTSUPP {
                    throw SystemError("fallocate \(ByteSize.format(expectedSize)) for", path: temp, errno: code)
                }
            }
            let hasher = expectedSHA256 == nil ? nil : SHA256Digest()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
            defer { buffer.deallocate() }
            var offset: Int64 = 0
            while true {
                let n = try input.read(into: buffer, at: offset)
                if n == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                hasher?.update(chunk)
                try output.writeAll(chunk)
                offset += Int64(n)
                progress?.add(UInt64(n))
            }
            guard UInt64(offset) == expectedSize else {
                throw SystemError.failed(
                    "copy", path: source,
                    hint: "read \(offset) bytes, expected \(expectedSize): the file changed during the copy; try again")
            }
            if let hasher, let expectedSHA256 {
                let actual = hasher.finish()
                guard actual == expectedSHA256 else {
                    throw SystemError.failed(
                        "verify sha256 of", path: source,
                        hint: "content hashes to \(actual), its name says \(expectedSHA256): the blob is corrupt; pull the model again")
                }
            }
            try output.sync()
            _ = try sys("rename", destination) { rename(temp, destination) }
        } catch {
            unlink(temp)
            throw error
        }
        try AtomicFile.syncDirectory(dir)
    }

    /// The target of a symlink, or nil when `path` is not a symlink.
    static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Points the symlink `link` at `target` so that a reader opening `link`
    /// always finds a whole file: make a new symlink beside it, rename(2) it over
    /// the old one (atomic), fsync the directory. Never replaces anything that is
    /// not a symlink. Returns false when the link already pointed there.
    @discardableResult
    static func pointLink(_ link: String, to target: String) throws -> Bool {
        if linkTarget(link) == target { return false }
        var st = stat()
        if lstat(link, &st) == 0 && st.st_mode & S_IFMT != S_IFLNK {
            throw SystemError(
                "replace", path: link, errno: EEXIST,
                hint: "it is a real file or directory, not a link cachectl made; move it out of the models directory")
        }
        let dir = Path.directory(of: link)
        try Path.makeDirectory(dir)
        let temp = dir + "/." + Path.lastComponent(of: link) + ".cachectl-link-\(getpid())"
        unlink(temp)
        _ = try sys("symlink", temp) { symlink(target, temp) }
        do {
            _ = try sys("rename", link) { rename(temp, link) }
        } catch {
            unlink(temp)
            throw error
        }
        try AtomicFile.syncDirectory(dir)
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
        unlink(tierRoot + "/" + relative)
        var dir = Path.directory(of: relative)
        while dir != "." && dir != "/" && !dir.isEmpty {
            if rmdir(tierRoot + "/" + dir) != 0 { break }
            dir = Path.directory(of: dir)
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
