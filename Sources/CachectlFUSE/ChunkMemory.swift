import Glibc

/// Memory for raw chunks: private anonymous mappings of their own, advised for
/// transparent huge pages.
///
/// Why not malloc: a multi-MiB chunk is filled once and then read for as long
/// as it stays in the pool. With 4 KiB pages, filling it costs one page fault
/// per 4 KiB (about a fifth of the daemon's CPU time on a cold 2 GiB read) and
/// every pool hit walks that many TLB entries. A 2 MiB-aligned mapping with
/// MADV_HUGEPAGE faults in 2 MiB at a time where THP is enabled ("always" or
/// "madvise", the usual defaults); elsewhere it is an ordinary mapping.
/// Eviction returns the memory to the kernel at once (munmap), so the pool's
/// limit is also what the process holds.
enum ChunkMemory {
    static let hugePage = 2 << 20
    static let page = 4096

    /// Bytes mapped for a chunk of `count` bytes.
    static func mappedLength(_ count: Int) -> Int {
        (max(count, 1) + page - 1) / page * page
    }

    /// A writable region of at least `count` bytes, or nil when the kernel
    /// refuses (ENOMEM); free it with ``release(_:count:)``.
    static func allocate(_ count: Int) -> UnsafeMutableRawPointer? {
        let length = mappedLength(count)
        let wantsHuge = length >= hugePage
        // Over-reserve by one huge page so a 2 MiB boundary lies inside, then
        // return the unaligned head and tail.
        let reserve = wantsHuge ? length + hugePage : length
        guard let raw = mmap(nil, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            raw != MAP_FAILED
        else { return nil }
        guard wantsHuge else { return raw }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(hugePage) - 1) & ~UInt(hugePage - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        let tail = reserve - head - length
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        if tail > 0 { munmap(base + length, tail) }
        _ = madvise(base, length, MADV_HUGEPAGE)  // best effort: EINVAL without THP
        return base
    }

    static func release(_ base: UnsafeMutableRawPointer, count: Int) {
        munmap(base, mappedLength(count))
    }

    /// Whether `base` starts on a huge page boundary (tests).
    static func isHugeAligned(_ base: UnsafeRawPointer) -> Bool {
        UInt(bitPattern: base) % UInt(hugePage) == 0
    }
}
