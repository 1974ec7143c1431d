import Glibc

/// What statvfs(3) says of the filesystem holding a path, in bytes and files.
public struct FilesystemSpace: Sendable, Equatable {
    public var totalBytes: UInt64
    /// Free bytes, including those reserved for root (f_bfree).
    public var freeBytes: UInt64
    /// Bytes an unprivileged writer may still use (f_bavail).
    public var availableBytes: UInt64
    public var totalFiles: UInt64
    /// Inodes an unprivileged writer may still use (f_favail).
    public var availableFiles: UInt64

    public static func of(_ path: String) throws(CachectlError) -> FilesystemSpace {
        var st = statvfs()
        _ = try sys("statvfs", path) { statvfs(path, &st) }
        let unit = UInt64(st.f_frsize)
        return FilesystemSpace(
            totalBytes: UInt64(st.f_blocks) * unit, freeBytes: UInt64(st.f_bfree) * unit,
            availableBytes: UInt64(st.f_bavail) * unit, totalFiles: UInt64(st.f_files),
            availableFiles: UInt64(st.f_favail))
    }
}
