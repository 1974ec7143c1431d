import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlFUSE

/// FUSE passthrough of files wholly in the pool, on real mounts. Run as root in
/// a private mount namespace: `unshare -m --propagation private swift test
/// --filter MirrorPassthroughTests`. On kernels before 6.9 the mirror must fall
/// back to serving every read itself, and these tests check that instead.
@Suite(
    .serialized,
    .rootInPrivateMountNamespace)
struct MirrorPassthroughTests {
    /// Linux 6.9 added FUSE passthrough.
    static var kernelHasPassthrough: Bool {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(separator: ".").prefix(2).map { Int($0.prefix { $0.isNumber }) ?? 0 }
        return parts.count == 2 && (parts[0], parts[1]) >= (6, 9)
    }

    /// Waits for the first open's decision to show in stats ("undecided" before).
    static func status(_ mount: MirrorMount) -> String {
        mount.stats().passthrough ?? "-"
    }

    static func expectOnWhereTheKernelHasIt(_ status: String) {
        if kernelHasPassthrough {
            // A 6.9+ kernel built without CONFIG_FUSE_PASSTHROUGH refuses the backing ioctl.
            #expect(status == "on" || status.hasPrefix("off: FUSE_DEV_IOC_BACKING_OPEN"), "passthrough: \(status)")
        } else {
            #expect(status.hasPrefix("off: "), "passthrough: \(status)")
        }
    }

    static func mapped(_ path: String, count: Int) throws -> [UInt8] {
        let file = try OpenFile(path)
        guard let base = mmap(nil, count, PROT_READ, MAP_SHARED, file.fd, 0), base != MAP_FAILED else {
            throw CachectlError("mmap", path: path, errno: errno)
        }
        defer { munmap(base, count) }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    @Test func aFileWhollyInThePoolIsReadByTheKernelWithoutTheDaemon() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        // A compressible first chunk (like a GGUF header) and random weights after it.
        let bytes = compressible(1 << 20) + pseudoRandom(5 * 1024 * 1024 + 1234, seed: 31)
        fx.write("model.gguf", bytes)
        let mount = try fx.mount(pool: 64 << 20, chunk: 1 << 20, compression: .auto, prefetch: 0)
        // First open: nothing pooled yet, so the daemon serves it (and pools it).
        #expect(try Reads.whole(fx.mountpoint + "/model.gguf") == bytes)
        let status = Self.status(mount)
        Self.expectOnWhereTheKernelHasIt(status)
        let afterCold = mount.stats()
        #expect(afterCold.cachedBytes == UInt64(bytes.count))
        // Reopen: whole in the pool.
        let file = try OpenFile(fx.mountpoint + "/model.gguf")
        #expect(try Reads.range(file, offset: 0, count: bytes.count) == bytes)
        #expect(try Reads.range(file, offset: 1_048_000, count: 5000) == Array(bytes[1_048_000..<1_053_000]))
        #expect(try Self.mapped(fx.mountpoint + "/model.gguf", count: bytes.count) == bytes)
        let after = mount.stats()
        if status == "on" {
            #expect((after.passthroughOpens ?? 0) >= 2)
            // The kernel read the pool file itself: the daemon served no byte more.
            #expect(after.bytesFromRam == afterCold.bytesFromRam)
            // The compressed header chunk was written raw into the pool file.
            #expect(after.compressedChunks == 0)
            #expect(after.poolUsedBytes == UInt64(bytes.count))
        } else {
            #expect(after.passthroughOpens == 0)
            #expect(after.bytesFromRam > afterCold.bytesFromRam)
        }
        // A second open while the first is still open takes the same mode.
        #expect(try Reads.whole(fx.mountpoint + "/model.gguf") == bytes)
        _ = file
    }

    @Test func aMostlyCompressibleFileStaysCompressedAndIsServedByTheDaemon() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let text = compressible(6 * 1024 * 1024)
        fx.write("corpus.txt", text)
        let mount = try fx.mount(pool: 64 << 20, chunk: 1 << 20, compression: .lz4, prefetch: 0)
        #expect(try Reads.whole(fx.mountpoint + "/corpus.txt") == text)
        usleep(300_000)  // background compression of the chunks readers stored raw
        let before = mount.stats()
        #expect(try Reads.whole(fx.mountpoint + "/corpus.txt") == text)
        let after = mount.stats()
        #expect(after.passthroughOpens == 0)
        #expect(after.compressedChunks > 0)
        #expect(after.bytesFromRam > before.bytesFromRam)
    }

    @Test func anOpenPassthroughFileKeepsItsBytesWhileThePoolEvictsIt() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let first = pseudoRandom(3 * 1024 * 1024, seed: 41)
        let second = pseudoRandom(4 * 1024 * 1024, seed: 42)
        fx.write("a.bin", first)
        fx.write("b.bin", second)
        let mount = try fx.mount(pool: 4 << 20, chunk: 1 << 20, compression: .off, prefetch: 0)
        #expect(try Reads.whole(fx.mountpoint + "/a.bin") == first)
        let held = try OpenFile(fx.mountpoint + "/a.bin")  // passthrough when on
        // b.bin needs the whole pool: every chunk of a.bin is evicted.
        #expect(try Reads.whole(fx.mountpoint + "/b.bin") == second)
        #expect(mount.stats().evictions >= 3)
        Reads.dropPageCache(held)
        #expect(try Reads.range(held, offset: 0, count: first.count) == first)
        #expect(try Self.mapped(fx.mountpoint + "/a.bin", count: first.count) == first)
        // Once closed, a.bin is no longer whole in the pool: read through the daemon again.
        _ = held
    }

    @Test func offServesEveryReadFromTheDaemon() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let bytes = pseudoRandom(3 * 1024 * 1024 + 7, seed: 51)
        fx.write("w.bin", bytes)
        let mount = try fx.mount(pool: 16 << 20, chunk: 1 << 20, prefetch: 0, passthrough: false)
        #expect(try Reads.whole(fx.mountpoint + "/w.bin") == bytes)
        let before = mount.stats()
        #expect(try Reads.whole(fx.mountpoint + "/w.bin") == bytes)
        let after = mount.stats()
        #expect(after.passthrough == "disabled")
        #expect(after.passthroughOpens == 0)
        #expect(after.bytesFromRam >= before.bytesFromRam + UInt64(bytes.count))
    }

    /// Read-ahead queues each chunk of its window as its own job: opening a file
    /// and reading its first byte brings in the next `readAheadChunks` chunks.
    @Test func readAheadFetchesAWindowOfChunksAheadOfTheReader() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let bytes = pseudoRandom(24 * 1024 * 1024, seed: 61)
        fx.write("big.bin", bytes)
        let mount = try fx.mount(pool: 64 << 20, chunk: 1 << 20, compression: .off, prefetch: 0)
        let file = try OpenFile(fx.mountpoint + "/big.bin")
        #expect(try Reads.range(file, offset: 0, count: 1) == [bytes[0]])
        let window = MirrorOptions(source: "", mountpoint: "", poolBytes: 0).readAheadChunks
        var stats = mount.stats()
        for _ in 0..<100 where stats.prefetchCompleted < UInt64(window) {
            usleep(20_000)
            stats = mount.stats()
        }
        #expect(stats.prefetchCompleted >= UInt64(window))
        #expect(stats.cachedBytes <= UInt64(window + 6) << 20)  // the window (+ the kernel's readahead), not the file
        #expect(try Reads.range(file, offset: 7 << 20, count: 4096) == Array(bytes[(7 << 20)..<((7 << 20) + 4096)]))
    }
}
