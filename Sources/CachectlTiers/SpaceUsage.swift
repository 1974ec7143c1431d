import CachectlSystem
import Glibc

/// Size, used and free bytes of a mounted filesystem, from statvfs(3).
public struct SpaceUsage: Codable, Sendable, Equatable {
    public var total: UInt64
    public var used: UInt64
    /// Bytes an unprivileged writer may still use (f_bavail).
    public var free: UInt64

    public static func of(_ path: String) throws(CachectlError) -> SpaceUsage {
        var st = statvfs()
        _ = try sys("statvfs", path) { statvfs(path, &st) }
        let unit = UInt64(st.f_frsize)
        return SpaceUsage(
            total: UInt64(st.f_blocks) * unit, used: UInt64(st.f_blocks - st.f_bfree) * unit,
            free: UInt64(st.f_bavail) * unit)
    }
}
