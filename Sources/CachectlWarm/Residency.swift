import CCachectlShims
import CachectlSystem
import Glibc

/// How page-cache residency is measured.
public enum ResidencyMethod: String, Sendable, Codable, CaseIterable {
    /// cachestat(2) where the kernel has it (6.5+), else mincore(2).
    case auto
    /// cachestat(2): one call per range, no mapping.
    case cachestat
    /// mincore(2) on a read-only shared mapping of the file.
    case mincore
}

/// The page-cache residency of one open file, by cachestat(2) or mincore(2).
///
/// Both calls refuse to leak residency of files the caller could not write:
/// mincore reports every page as resident for such files (kernel commit
/// 134fca9063ad, Linux 5.0), and newer kernels make cachestat fail with EPERM.
/// `method` is then `nil` and residency is unknown: callers must read, not skip.
///
/// Holes (found with SEEK_DATA/SEEK_HOLE) count as resident: reading them costs no
/// I/O, so a sparse file is fully warm once its data is, and warming it again reads
/// nothing.
public final class ResidencyProbe {
    public let file: OpenFile
    public let size: UInt64
    /// The data ranges of the file at probe time; the rest of `[0, size)` is holes.
    public let dataRanges: [Range<UInt64>]
    /// The method in use, or nil when residency cannot be measured for this file.
    public private(set) var method: ResidencyMethod?
    /// Why `method` is nil.
    public private(set) var unavailableReason: String?

    private var mapping: UnsafeMutableRawPointer?
    private static let pageSize = UInt64(cachectl_page_size())

    /// - Throws: only when `preferred` names a method this kernel lacks.
    public init(file: OpenFile, size: UInt64, preferred: ResidencyMethod = .auto) throws(CachectlError) {
        self.file = file
        self.size = size
        self.dataRanges = RegularFile.dataRanges(fd: file.fd, size: size)
        if preferred != .mincore {
            var stat = cachectl_cachestat()
            if cachectl_cachestat(file.fd, 0, 1, &stat) == 0 {
                method = .cachestat
                return
            }
            let code = errno
            if preferred == .cachestat {
                throw CachectlError(
                    "cachestat", path: file.path, errno: code,
                    hint: code == ENOSYS ? "this kernel is older than 6.5; use --residency-method mincore" : nil)
            }
            if code == EPERM {
                unavailableReason = "the kernel refuses cachestat for files this user cannot write (EPERM)"
                return
            }
        }
        guard Self.mincoreIsTruthful(file) else {
            unavailableReason =
                "mincore reports every page resident for files this user cannot write (kernel commit 134fca9063ad); run as root or as the file's owner"
            return
        }
        method = .mincore
        if size > 0 {
            let address = mmap(nil, Int(size), PROT_READ, MAP_SHARED, file.fd, 0)
            if address == MAP_FAILED {
                let code = errno
                throw CachectlError("mmap", path: file.path, errno: code)
            }
            mapping = address
        }
    }

    /// Opens `path` read-only (refusing anything but a regular file, without blocking
    /// on a FIFO) and probes it at its current size.
    public convenience init(opening path: String, preferred: ResidencyMethod = .auto) throws(CachectlError) {
        let (file, st) = try RegularFile.openForProbing(path)
        try self.init(file: file, size: UInt64(st.st_size), preferred: preferred)
    }

    deinit {
        if let mapping { munmap(mapping, Int(size)) }
    }

    /// The kernel answers mincore truthfully only for the owner, a writer, or a
    /// process with CAP_FOWNER (root): `can_do_mincore()` in mm/mincore.c.
    static func mincoreIsTruthful(_ file: OpenFile) -> Bool {
        if geteuid() == 0 { return true }
        guard let st = try? file.status() else { return false }
        if st.st_uid == geteuid() { return true }
        return faccessat(AT_FDCWD, file.path, W_OK, AT_EACCESS) == 0
    }

    /// Resident bytes in `[offset, offset + length)`, clipped to the file size, holes
    /// included; nil when residency cannot be measured.
    public func residentBytes(offset: UInt64 = 0, length: UInt64? = nil) -> UInt64? {
        guard method != nil else { return nil }
        let end = min(size, length.map { offset + $0 } ?? size)
        guard end > offset else { return 0 }
        let span = end - offset
        var data: UInt64 = 0
        var cached: UInt64 = 0
        for range in dataRanges where range.upperBound > offset && range.lowerBound < end {
            let start = max(range.lowerBound, offset)
            let stop = min(range.upperBound, end)
            guard let resident = cachedBytes(start, stop) else { return nil }
            data += stop - start
            cached += resident
        }
        return min(span, cached + (span - data))
    }

    /// Page-cache bytes of `[start, end)`, by the probe's method.
    private func cachedBytes(_ start: UInt64, _ end: UInt64) -> UInt64? {
        let pages: UInt64
        switch method {
        case nil:
            return nil
        case .cachestat, .auto:
            var stat = cachectl_cachestat()
            guard retryingEINTR({ cachectl_cachestat(file.fd, start, end - start, &stat) }) == 0 else { return nil }
            pages = stat.nr_cache
        case .mincore:
            guard let mapping else { return 0 }
            let first = start / Self.pageSize
            let last = (end + Self.pageSize - 1) / Self.pageSize
            var vector = [UInt8](repeating: 0, count: Int(last - first))
            let base = mapping + Int(first * Self.pageSize)
            let rc = vector.withUnsafeMutableBufferPointer {
                mincore(base, Int(end - first * Self.pageSize), $0.baseAddress)
            }
            guard rc == 0 else { return nil }
            pages = UInt64(vector.reduce(0) { $0 + Int($1 & 1) })
        }
        return min(end - start, pages * Self.pageSize)
    }
}

/// One file's residency, as `cachectl residency` reports it.
public struct FileResidency: Sendable, Codable, Equatable {
    public var path: String
    public var size: UInt64
    /// nil when it cannot be measured (see ``ResidencyProbe``).
    public var resident: UInt64?
    public var percent: Double?
    public var method: ResidencyMethod?
    public var error: String?

    /// Measures `file` now. Never throws: a failure is recorded in `error`.
    ///
    /// - Parameter opened: the file already open (``FileSelection/forEach``), sized as
    ///   `file.size`; nil opens `file.path` here.
    public static func measure(_ file: SelectedFile, opened: OpenFile? = nil, method: ResidencyMethod = .auto)
        -> FileResidency
    {
        var result = FileResidency(path: file.path, size: file.size)
        do {
            let open: OpenFile
            if let opened {
                open = opened
            } else {
                let (fresh, st) = try RegularFile.openForProbing(file.path)
                open = fresh
                result.size = UInt64(st.st_size)
            }
            if method != .mincore, let pages = Residency.cachedPages(open.fd, size: result.size) {
                // One cachestat over the whole file settles the common cases: every page
                // cached (holes included, nothing is missing), or none (only the holes
                // count, found with SEEK_DATA/SEEK_HOLE). Anything between is probed range by range.
                let resident: UInt64?
                if pages >= Residency.pages(result.size) {
                    resident = result.size
                } else if pages == 0 {
                    let data = RegularFile.dataRanges(fd: open.fd, size: result.size)
                        .reduce(0) { $0 + ($1.upperBound - $1.lowerBound) }
                    resident = result.size - min(result.size, data)
                } else {
                    resident = nil
                }
                if let resident {
                    result.method = .cachestat
                    result.resident = resident
                    result.percent = Residency.percent(resident, of: result.size)
                    return result
                }
            }
            let probe = try ResidencyProbe(file: open, size: result.size, preferred: method)
            result.method = probe.method
            result.resident = probe.residentBytes()
            if result.resident == nil { result.error = probe.unavailableReason }
            result.percent = result.resident.map { Residency.percent($0, of: probe.size) }
        } catch {
            result.error = error.description
        }
        return result
    }
}

public enum Residency {
    private static let pageSize = UInt64(cachectl_page_size())

    /// Pages of `[0, size)` in the page cache by one cachestat(2), or nil when
    /// cachestat is unavailable or refused (the caller then probes as usual).
    static func cachedPages(_ fd: Int32, size: UInt64) -> UInt64? {
        var stat = cachectl_cachestat()
        guard retryingEINTR({ cachectl_cachestat(fd, 0, size, &stat) }) == 0 else { return nil }
        return stat.nr_cache
    }

    /// True when one cachestat(2) says every page of `[0, size)` is cached (never
    /// with `method` mincore, nor where cachestat is unavailable or refused).
    static func isFullyCached(_ fd: Int32, size: UInt64, method: ResidencyMethod) -> Bool {
        guard method != .mincore, let pages = cachedPages(fd, size: size) else { return false }
        return pages >= Self.pages(size)
    }

    /// Pages that `[0, size)` spans.
    static func pages(_ size: UInt64) -> UInt64 { (size + pageSize - 1) / pageSize }

    /// Percent with 100 for an empty file (nothing is missing from the cache).
    public static func percent(_ part: UInt64, of whole: UInt64) -> Double {
        whole == 0 ? 100 : Double(part) * 100 / Double(whole)
    }
}
