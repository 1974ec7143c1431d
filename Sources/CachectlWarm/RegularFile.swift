import CachectlSystem
import Glibc

/// Opening a selected file for reading, safely: a path checked as a regular file at
/// selection time may since have been swapped for a FIFO or a device.
enum RegularFile {
    /// open(2) with O_NONBLOCK (opening a FIFO or a tty never waits for a peer),
    /// O_NOCTTY and O_CLOEXEC, then fstat(2) on the descriptor: anything but a regular
    /// file is refused. O_NONBLOCK is cleared again before any read. Symlinks are
    /// followed on purpose (ollama blobs are reached through them); warm only reads
    /// into the page cache and never writes through the path.
    static func open(_ path: String) throws(CachectlError) -> OpenFile {
        let (file, _) = try openForProbing(path)
        let flags = fcntl(file.fd, F_GETFL)
        if flags >= 0 { _ = fcntl(file.fd, F_SETFL, flags & ~O_NONBLOCK) }
        return file
    }

    /// The same checks for a file that is only probed (cachestat, mincore, fadvise),
    /// never read: O_NONBLOCK stays set, and the fstat(2) that checked it is returned.
    static func openForProbing(_ path: String) throws(CachectlError) -> (OpenFile, stat) {
        let file = try OpenFile(path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY)
        let st = try file.status()
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw CachectlError.failed(
                "open", path: path,
                hint:
                    "is now a \(FileSelection.kind(st.st_mode)), not a regular file (it changed since it was selected); refused"
            )
        }
        return (file, st)
    }

    /// lseek(2) whence values from <unistd.h> (_GNU_SOURCE, not imported into Swift);
    /// the same on every Linux architecture.
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    /// The data ranges of `[0, size)` by lseek(2) SEEK_DATA/SEEK_HOLE, in order.
    /// Everything else is a hole: it reads as zeros without any I/O, so warming skips
    /// it and residency counts it as resident. A filesystem without SEEK_DATA support
    /// reports the whole file as data (the kernel's generic fallback); any other error
    /// is treated the same way, which only costs reading zeros.
    static func dataRanges(fd: Int32, size: UInt64) -> [Range<UInt64>] {
        guard size > 0 else { return [] }
        var ranges: [Range<UInt64>] = []
        var position: UInt64 = 0
        while position < size {
            let data = lseek(fd, off_t(position), seekData)
            if data < 0 {
                if errno == ENXIO { break }  // no data after `position`: the rest is a hole
                return [0..<size]
            }
            let start = UInt64(data)
            guard start < size else { break }
            let hole = lseek(fd, off_t(start), seekHole)
            if hole < 0 { return [0..<size] }
            let end = min(size, max(UInt64(hole), start + 1))
            ranges.append(start..<end)
            position = end
        }
        return ranges
    }
}
