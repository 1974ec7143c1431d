import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Glibc
import Testing

@testable import CachectlFUSE

/// The pool and codec without FUSE: eviction order, the size limit, versions, LZ4.
struct ChunkPoolTests {
    static let version = FileVersion(size: 1 << 20, mtimeSeconds: 1, mtimeNanoseconds: 0)

    func store(_ pool: ChunkPool, file: UInt64, index: Int, bytes: Int, version: FileVersion = version) {
        let id = FileID(device: 1, inode: file)
        pool.noteVersion(version, of: id, path: "/f\(file)")
        guard case .mustFill(let fill) = pool.acquire(ChunkKey(file: id, index: index), version: version, demand: true)
        else {
            Issue.record("chunk \(index) of \(file) unexpectedly present")
            return
        }
        let data = [UInt8](repeating: UInt8(index & 0xff), count: bytes)
        pool.complete(
            fill, with: data.withUnsafeBytes { ChunkCodec.raw($0.baseAddress!, count: bytes) },
            sourceBytes: bytes, prefetched: false)
    }

    func isCached(_ pool: ChunkPool, file: UInt64, index: Int) -> Bool {
        pool.peek(ChunkKey(file: FileID(device: 1, inode: file), index: index)) != nil
    }

    @Test func evictsLeastRecentlyUsedAndStaysUnderLimit() {
        let pool = ChunkPool(limit: 3000)
        store(pool, file: 1, index: 0, bytes: 1000)
        store(pool, file: 1, index: 1, bytes: 1000)
        store(pool, file: 1, index: 2, bytes: 1000)
        // Touch chunk 0 so chunk 1 becomes the oldest.
        if case .hit = pool.acquire(
            ChunkKey(file: FileID(device: 1, inode: 1), index: 0), version: Self.version, demand: true)
        {
        } else {
            Issue.record("chunk 0 should hit")
        }
        store(pool, file: 1, index: 3, bytes: 1000)
        #expect(isCached(pool, file: 1, index: 0))
        #expect(!isCached(pool, file: 1, index: 1))
        #expect(isCached(pool, file: 1, index: 3))
        let snapshot = pool.snapshot()
        #expect(snapshot.payload == 3000)
        #expect(snapshot.peakPayload <= 3000)
        #expect(snapshot.counters.evictions == 1)
        #expect(snapshot.counters.hits == 1)
        #expect(snapshot.counters.misses == 4)
    }

    @Test func chunkLargerThanPoolIsServedButNotStored() {
        let pool = ChunkPool(limit: 500)
        store(pool, file: 2, index: 0, bytes: 1000)
        #expect(pool.snapshot().payload == 0)
    }

    @Test func changedVersionDropsOnlyThatFilesChunks() {
        let pool = ChunkPool(limit: 10_000)
        store(pool, file: 1, index: 0, bytes: 100)
        store(pool, file: 2, index: 0, bytes: 100)
        let newer = FileVersion(size: 5, mtimeSeconds: 2, mtimeNanoseconds: 0)
        #expect(pool.noteVersion(newer, of: FileID(device: 1, inode: 1), path: "/f1"))
        #expect(!isCached(pool, file: 1, index: 0))
        #expect(isCached(pool, file: 2, index: 0))
        #expect(pool.snapshot().counters.invalidations == 1)
        #expect(!pool.noteVersion(newer, of: FileID(device: 1, inode: 1), path: "/f1"))
    }

    @Test func fillOfAnOldVersionIsNotStored() {
        let pool = ChunkPool(limit: 10_000)
        let id = FileID(device: 1, inode: 9)
        pool.noteVersion(Self.version, of: id, path: "/f9")
        guard case .mustFill(let fill) = pool.acquire(ChunkKey(file: id, index: 0), version: Self.version, demand: true)
        else {
            Issue.record("expected a fill")
            return
        }
        pool.noteVersion(FileVersion(size: 1, mtimeSeconds: 9, mtimeNanoseconds: 0), of: id, path: "/f9")
        let data = [UInt8](repeating: 7, count: 64)
        pool.complete(
            fill, with: data.withUnsafeBytes { ChunkCodec.raw($0.baseAddress!, count: 64) }, sourceBytes: 64,
            prefetched: false)
        #expect(pool.snapshot().chunks == 0)
    }

    static func pseudoRandom(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    @Test(arguments: [1, 4095, 65536, 65537, 1_000_000])
    func lz4BlocksRoundTrip(count: Int) {
        let text = Array(String(repeating: "weights 0.125 0.25 -1.5 ", count: count / 24 + 1).utf8.prefix(count))
        let chunk = text.withUnsafeBytes { ChunkCodec.compress($0.baseAddress!, count: count) }
        #expect(chunk.rawCount == count)
        if count > 1000 { #expect(chunk.isCompressed && chunk.storedCount < count / 4) }
        // Whole, and from odd offsets that start and end inside blocks.
        for (offset, length) in [(0, count), (count / 3, count / 2), (max(0, count - 17), min(17, count))] {
            var out = [UInt8](repeating: 0, count: length)
            out.withUnsafeMutableBytes { _ = chunk.copy(from: offset, count: length, into: $0.baseAddress!) }
            #expect(out == Array(text[offset..<(offset + length)]))
        }
    }

    @Test func autoKeepsRandomDataRawAndCompressesText() {
        let random = Self.pseudoRandom(1 << 20, seed: 42)
        let text = Array(String(repeating: "abcdefgh", count: 1 << 17).utf8)
        #expect(!random.withUnsafeBytes { ChunkCodec.shouldCompress($0.baseAddress!, count: $0.count, mode: .auto) })
        #expect(text.withUnsafeBytes { ChunkCodec.shouldCompress($0.baseAddress!, count: $0.count, mode: .auto) })
        #expect(random.withUnsafeBytes { ChunkCodec.shouldCompress($0.baseAddress!, count: $0.count, mode: .lz4) })
        #expect(!text.withUnsafeBytes { ChunkCodec.shouldCompress($0.baseAddress!, count: $0.count, mode: .off) })
        // Random data under lz4 falls back to raw: LZ4 would only grow it.
        let chunk = random.withUnsafeBytes { ChunkCodec.compress($0.baseAddress!, count: $0.count) }
        #expect(!chunk.isCompressed && chunk.storedCount == random.count)
    }

    @Test(arguments: [
        ("/mnt/models", "mnt-models"), ("/", "-"), ("/a b/c-d", "a\\x20b-c\\x2dd"), ("/x/.hidden/", "x-.hidden"),
        ("/.dot", "\\x2edot"),
    ])
    func statsFileNamesAreEscapedMountpoints(path: String, expected: String) {
        #expect(FuseStatsFile.escape(path) == expected)
    }

    /// isMirror reads CachectlMount's table, which unescapes mountinfo's `\040`.
    @Test func mountinfoFieldsAreUnescaped() throws {
        let root = try makeTemporaryDirectory("fuse-test")
        defer { _ = try? ExternalCommand(["rm", "-rf", root]).run() }
        #expect(mkdir(root + "/proc", 0o755) == 0 && mkdir(root + "/proc/self", 0o755) == 0)
        let line =
            "61 27 0:52 / /mnt/with\\040space ro,nosuid,nodev,relatime - fuse.cachectl cachectl rw,user_id=0,group_id=0\n"
        _ = try AtomicFile.write(line, to: root + "/proc/self/mountinfo")
        let roots = KernelRoots.fixture(root)
        #expect(try MountTable.entry(at: "/mnt/with space", roots: roots)?.target == "/mnt/with space")
        #expect(FuseMountTable.isMirror("/mnt/with space", roots: roots))
        #expect(!FuseMountTable.isMirror("/plain", roots: roots))
    }

    @Test func optionsRejectAPoolSmallerThanAChunk() {
        var options = MirrorOptions(source: "/s", mountpoint: "/m", poolBytes: 1 << 20)
        #expect { try options.validate() } throws: { ($0 as? CachectlError)?.field == ["pool"] }
        options.poolBytes = 64 << 20
        #expect(throws: Never.self) { try options.validate() }
        options.chunkBytes = 5000
        #expect { try options.validate() } throws: { ($0 as? CachectlError)?.field == ["chunk"] }
    }
}
