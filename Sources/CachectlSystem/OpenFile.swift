import Glibc

/// An open file descriptor that closes itself. Immutable after init, so it can be
/// shared by worker threads that `pread` it concurrently.
public final class OpenFile: Sendable {
    public let fd: Int32
    public let path: String

    /// open(2) with O_CLOEXEC added.
    public init(_ path: String, flags: Int32 = O_RDONLY, mode: mode_t = 0) throws(CachectlError) {
        self.path = path
        self.fd = try sys("open", path) { open(path, flags | O_CLOEXEC, mode) }
    }

    /// Takes ownership of an open descriptor (closed with this object).
    public init(adopting fd: Int32, path: String) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// fstat(2).
    public func status() throws(CachectlError) -> stat {
        var st = stat()
        _ = try sys("fstat", path) { fstat(fd, &st) }
        return st
    }

    /// pread(2) into `buffer`, retrying EINTR; returns the bytes read (0 at end of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(CachectlError) -> Int {
        try sys("read", path) { pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// posix_fadvise(2). It returns the error number instead of setting errno.
    public func advise(_ advice: Int32, offset: Int64 = 0, length: Int64 = 0) throws(CachectlError) {
        let code = posix_fadvise(fd, off_t(offset), off_t(length), advice)
        if code != 0 { throw CachectlError("posix_fadvise", path: path, errno: code) }
    }

    /// fsync(2).
    public func sync() throws(CachectlError) {
        _ = try sys("fsync", path) { fsync(fd) }
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(CachectlError) {
        var done = 0
        while done < bytes.count {
            let n = try sys("write", path) { write(fd, bytes.baseAddress! + done, bytes.count - done) }
            done += n
        }
    }
}
