import CachectlSystem

/// Size, used and free bytes of a mounted filesystem, from statvfs(3).
public struct SpaceUsage: Codable, Sendable, Equatable {
    public var total: UInt64
    public var used: UInt64
    /// Bytes an unprivileged writer may still use (f_bavail).
    public var free: UInt64

    public static func of(_ path: String) throws(CachectlError) -> SpaceUsage {
        let space = try FilesystemSpace.of(path)
        return SpaceUsage(total: space.totalBytes, used: space.totalBytes - space.freeBytes, free: space.availableBytes)
    }
}
