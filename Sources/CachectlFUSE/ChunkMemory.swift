import CCachectlFuse
import Glibc

/// Memory for raw chunks, each in a mapping of its own rather than malloc.
///
/// Preferred: a memfd (an anonymous tmpfs file) mapped shared. Its descriptor
/// lets a read reply splice the chunk's pages into /dev/fuse (read_buf with a
/// FUSE_BUF_IS_FD buffer) instead of copying them into a reply buffer first,
/// and the chunk is filled with sendfile(2) from the source, which writes whole
/// pages without the zeroing and per-page faults a malloc'ed buffer costs
/// (together about half of the daemon's CPU time on a cold 2 GiB read).
///
/// Fallback when no descriptor is left (EMFILE): a private anonymous mapping,
/// 2 MiB-aligned and advised for transparent huge pages, so filling it faults
/// in 2 MiB at a time where THP is enabled.
///
/// Either way eviction returns the memory at once (munmap, close), so the
/// pool's limit is also what the process holds.
enum ChunkMemory {
    static let hugePage = 2 << 20
    static let page = 4096

    /// A chunk's memory: `fd` is the memfd, or -1 for an anonymous mapping.
    struct Region: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        let mappedLength: Int
        let fd: Int32
    }

    /// Bytes mapped for a chunk of `count` bytes.
    static func mappedLength(_ count: Int) -> Int {
        (max(count, 1) + page - 1) / page * page
    }

    /// A writable region of at least `count` bytes, or nil when the kernel
    /// refuses (ENOMEM, or vm.max_map_count reached); free it with ``release(_:)``.
    static func allocate(_ count: Int, preferFile: Bool = true) -> Region? {
        if preferFile, let region = allocateFile(count) { return region }
        return allocateAnonymous(count)
    }

    static func allocateFile(_ count: Int) -> Region? {
        let length = mappedLength(count)
        let fd = cachectl_fuse_memfd("cachectl-chunk")
        guard fd >= 0 else { return nil }
        guard ftruncate(fd, off_t(length)) == 0,
            let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED
        else {
            close(fd)
            return nil
        }
        return Region(base: base, mappedLength: length, fd: fd)
    }

    static func allocateAnonymous(_ count: Int) -> Region? {
        let length = mappedLength(count)
        let wantsHuge = length >= hugePage
        // Over-reserve by one huge page so a 2 MiB boundary lies inside, then
        // return the unaligned head and tail.
        let reserve = wantsHuge ? length + hugePage : length
        guard let raw = mmap(nil, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            raw != MAP_FAILED
        else { return nil }
        guard wantsHuge else { return Region(base: raw, mappedLength: length, fd: -1) }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(hugePage) - 1) & ~UInt(hugePage - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        let tail = reserve - head - length
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        if tail > 0 { munmap(base + length, tail) }
        _ = madvise(base, length, MADV_HUGEPAGE)  // best effort: EINVAL without THP
        return Region(base: base, mappedLength: length, fd: -1)
    }

    static func release(_ region: Region) {
        munmap(region.base, region.mappedLength)
        if region.fd >= 0 { close(region.fd) }
    }

    /// Fills `region` with `length` bytes of `source` from `offset`: sendfile
    /// into a memfd (pread into the mapping when sendfile is refused or for an
    /// anonymous region). Returns the bytes read (fewer at end of file) or an errno.
    static func fill(_ region: Region, from source: Int32, at offset: Int64, length: Int) -> Result<Int, Errno32> {
        var done = 0
        var useSendfile = region.fd >= 0
        var position = off_t(offset)
        while done < length {
            let n: Int
            if useSendfile {
                n = sendfile(region.fd, source, &position, length - done)
                if n < 0 && (errno == EINVAL || errno == ENOSYS) && done == 0 {
                    useSendfile = false
                    continue
                }
            } else {
                n = pread(source, region.base + done, length - done, off_t(offset + Int64(done)))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Errno32(errno))
            }
            if n == 0 { break }
            done += n
        }
        return .success(done)
    }

    /// Whether `base` starts on a huge page boundary (tests).
    static func isHugeAligned(_ base: UnsafeRawPointer) -> Bool {
        UInt(bitPattern: base) % UInt(hugePage) == 0
    }

    /// Raises the soft limit on open descriptors to the hard limit: every raw
    /// chunk holds a memfd (a 16 GiB pool of 4 MiB chunks is 4096 of them).
    /// Past the limit chunks fall back to anonymous memory, so this only helps.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
