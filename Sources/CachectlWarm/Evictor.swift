import CachectlSystem
import Glibc

/// What evicting one file released.
public struct FileEviction: Sendable, Codable, Equatable {
    public var path: String
    public var size: UInt64
    public var residentBefore: UInt64?
    public var residentAfter: UInt64?
    /// Bytes that left the page cache; nil when residency cannot be measured.
    public var released: UInt64?
    public var error: String?
}

/// Drops files from the page cache with POSIX_FADV_DONTNEED: only these files,
/// never the whole cache.
public enum Evictor {
    public static func evict(_ file: SelectedFile, method: ResidencyMethod = .auto) -> FileEviction {
        var result = FileEviction(path: file.path, size: file.size)
        do {
            let handle = try OpenFile(file.path)
            let size = UInt64(try handle.status().st_size)
            result.size = size
            let probe = try ResidencyProbe(file: handle, size: size, preferred: method)
            result.residentBefore = probe.residentBytes()
            // Dirty pages are not dropped by DONTNEED: write them back first.
            _ = fdatasync(handle.fd)
            try handle.advise(POSIX_FADV_DONTNEED)
            result.residentAfter = probe.residentBytes()
            if let before = result.residentBefore, let after = result.residentAfter {
                result.released = before > after ? before - after : 0
            }
        } catch {
            result.error = error.description
        }
        return result
    }
}
