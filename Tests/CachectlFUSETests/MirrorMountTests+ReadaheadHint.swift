import CachectlMount
import CachectlSystem
import Glibc
import Testing

@testable import CachectlFUSE

/// WILLNEED through a real FUSE mount (the mirror, served from its source): one call
/// is cut to a readahead window by the kernel, ReadaheadHint asks for all of it. In
/// MirrorMountTests' suite, which holds the real mounts (root, private namespace).
extension MirrorMountTests {
    @Test func aReadaheadHintReachesTheWholeRangeOneWindowAtATime() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let size = 16 << 20
        fx.write("model.bin", pseudoRandom(size, seed: 71))
        try fx.mount(pool: 64 << 20, chunk: 1 << 20, compression: .off, prefetch: 0, passthrough: false)
        // mount returns with the bdi's readahead raised (1 MiB for 1 MiB chunks): a file
        // takes its window when opened, and this one must take the raised one.
        var st = stat()
        #expect(stat(fx.mountpoint, &st) == 0)
        #expect(Readahead.kilobytes(for: DeviceNumber(UInt64(st.st_dev))) == 1024)
        let file = try OpenFile(fx.mountpoint + "/model.bin")

        // The kernel fact the type exists for (mm/readahead.c, force_page_cache_ra; 6.18
        // here): one call over 16 MiB starts one window, at most the mirror's 1 MiB.
        _ = posix_fadvise(file.fd, 0, off_t(size), POSIX_FADV_WILLNEED)
        let once = Self.settledResidency(file, size: size)
        #expect(once > 0 && once <= 4 << 20, "one WILLNEED call brought in \(once) bytes")

        _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_DONTNEED)
        #expect(Self.residentBytes(file, size: size) == 0)
        let hint = ReadaheadHint()
        hint.willNeed(fd: file.fd, offset: 0, length: Int64(size))
        var resident = 0
        for _ in 0..<250 {  // up to 5 s: the requests are in flight, not yet answered
            resident = Self.residentBytes(file, size: size)
            if resident == size { break }
            usleep(20_000)
        }
        #expect(resident == size, "ReadaheadHint brought in \(resident) of \(size) bytes")
    }

    /// Residency once it stopped growing (readahead in flight lands within ms here).
    static func settledResidency(_ file: OpenFile, size: Int) -> Int {
        var last = -1
        for _ in 0..<50 {
            usleep(40_000)
            let now = residentBytes(file, size: size)
            if now == last && now > 0 { return now }
            last = now
        }
        return last
    }

    /// Bytes of the file in the mount's page cache, by mincore(2).
    static func residentBytes(_ file: OpenFile, size: Int) -> Int {
        guard let address = mmap(nil, size, PROT_READ, MAP_SHARED, file.fd, 0), address != MAP_FAILED else { return -1 }
        defer { munmap(address, size) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: (size + page - 1) / page)
        guard mincore(address, size, &vector) == 0 else { return -1 }
        return vector.reduce(0) { $0 + Int($1 & 1) } * page
    }
}
