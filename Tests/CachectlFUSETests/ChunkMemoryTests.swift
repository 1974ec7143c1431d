import CachectlSystem
import Foundation
import Glibc
import Testing

@testable import CachectlFUSE

/// Chunk memory (memfd and anonymous THP mappings) and the splice reply
/// decision, without FUSE: what `read_buf` hands libfuse must be the source's bytes.
struct ChunkMemoryTests {
    /// A temporary source directory with one file; removed by `remove()`.
    struct Source {
        let root: String
        let bytes: [UInt8]
        init(size: Int, seed: UInt64) throws {
            var template = Array("/tmp/cachectl-chunkmem-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw SystemError("mkdtemp", errno: errno) }
            root = String(cString: made)
            bytes = pseudoRandom(size, seed: seed)
            _ = FileManager.default.createFile(atPath: root + "/model.bin", contents: Data(bytes))
        }
        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    func preadAll(_ fd: Int32, offset: Int, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, count, off_t(offset)) }
        return Array(out.prefix(max(0, n)))
    }

    @Test(arguments: [true, false])
    func fillCopiesTheSourceRangeIntoARegion(preferFile: Bool) throws {
        let source = try Source(size: 3 << 20, seed: 11)
        defer { source.remove() }
        let file = try OpenFile(source.root + "/model.bin")
        let region = try #require(ChunkMemory.allocate(2 << 20, preferFile: preferFile))
        #expect((region.fd >= 0) == preferFile)
        if !preferFile { #expect(ChunkMemory.isHugeAligned(region.base)) }
        // The last chunk is short: asking for 2 MiB from 2 MiB gets the 1 MiB left.
        let done = try ChunkMemory.fill(region, from: file.fd, at: 2 << 20, length: 2 << 20).get()
        #expect(done == 1 << 20)
        let chunk = ChunkCodec.adopt(region, count: done)
        let mapped = Array(UnsafeRawBufferPointer(start: chunk.base, count: done))
        #expect(mapped == Array(source.bytes[(2 << 20)...]))
        if preferFile {
            // The descriptor holds the same bytes from offset 0: what a reply splices.
            let fd = try #require(chunk.spliceFD)
            #expect(preadAll(fd, offset: 4096, count: 8192) == Array(source.bytes[(2 << 20) + 4096..<(2 << 20) + 12288]))
        } else {
            #expect(chunk.spliceFD == nil)
        }
    }

    @Test func compressedAndMallocedChunksAreNotSpliced() {
        let text = compressible(256 << 10)
        let compressed = text.withUnsafeBytes { ChunkCodec.compress($0.baseAddress!, count: $0.count) }
        #expect(compressed.isCompressed)
        #expect(compressed.spliceFD == nil)
        let raw = text.withUnsafeBytes { ChunkCodec.raw($0.baseAddress!, count: $0.count) }
        #expect(raw.spliceFD == nil)
    }

    @Test func readsInsideOneRawChunkAreSplicedAndOthersCopied() throws {
        let chunk = 1 << 20
        let source = try Source(size: 3 * chunk + 777, seed: 12)
        defer { source.remove() }
        var options = MirrorOptions(source: source.root, mountpoint: "/nonexistent", poolBytes: 16 << 20)
        options.chunkBytes = chunk
        options.compression = .off
        options.prefetchFiles = 0
        options.readAheadChunks = 0
        options.statsDirectory = nil
        let mirror = try SourceMirror(options: options)
        defer { mirror.shutdown() }
        let (handle, _) = try mirror.open("/model.bin", flags: O_RDONLY).mapError { SystemError("open", errno: $0.value) }.get()
        defer { mirror.release(handle) }

        // Inside chunk 1: spliced from its memfd at the offset within the chunk.
        guard case .spliced(_, let fd, let within, let count) = mirror.spliceReply(handle, size: 4096, offset: Int64(chunk + 8192))
        else {
            Issue.record("a read inside one raw chunk was not spliced")
            return
        }
        #expect(within == 8192 && count == 4096)
        #expect(preadAll(fd, offset: within, count: count) == Array(source.bytes[chunk + 8192..<chunk + 12288]))
        // Served again from the pool: counted as RAM bytes.
        _ = mirror.spliceReply(handle, size: 4096, offset: Int64(chunk))
        #expect(mirror.pool.snapshot().counters.bytesFromRAM == 4096)

        // The short last chunk: only the bytes that exist.
        guard case .spliced(_, _, _, let tail) = mirror.spliceReply(handle, size: 1 << 20, offset: Int64(3 * chunk)) else {
            Issue.record("the last chunk was not spliced")
            return
        }
        #expect(tail == 777)

        // Across a chunk boundary, and past the end: the copy path.
        guard case .copy = mirror.spliceReply(handle, size: 8192, offset: Int64(chunk - 4096)) else {
            Issue.record("a read across chunks was spliced")
            return
        }
        guard case .copy = mirror.spliceReply(handle, size: 10, offset: Int64(source.bytes.count)) else {
            Issue.record("a read past the end was spliced")
            return
        }
    }
}
