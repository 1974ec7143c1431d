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
            let probe = try ResidencyProbe(opening: file.path, preferred: method)
            result.size = probe.size
            result.residentBefore = probe.residentBytes()
            // Dirty pages are not dropped by DONTNEED: write them back first.
            _ = fdatasync(probe.file.fd)
            try probe.file.advise(POSIX_FADV_DONTNEED)
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
