import CCachectlFuse
import Glibc

/// How chunks are stored in the RAM pool.
public enum CompressionMode: String, Sendable, Codable, CaseIterable {
    /// LZ4 a sample of each chunk; store it raw when LZ4 would save less than
    /// ``ChunkCodec/minimumSaving`` (weights that are already dense, random data).
    case auto
    /// Always LZ4 (blocks that do not shrink are still kept raw).
    case lz4
    /// Never compress: every chunk costs its full size.
    case off
}

/// A chunk as it sits in the pool: one allocation, either the raw bytes or a
/// sequence of independently LZ4-compressed blocks, so a read decompresses only
/// the ``ChunkCodec/blockSize`` blocks it touches rather than the whole chunk.
/// A raw chunk may instead live in a ``PoolFile`` (passthrough; see there), at
/// its offset in the file.
/// Immutable after creation; readers keep a reference while they copy, so
/// eviction never frees memory under a reader.
final class StoredChunk: @unchecked Sendable {
    /// Bytes of file data the chunk holds.
    let rawCount: Int
    /// Bytes allocated for the payload (what counts against the pool).
    let storedCount: Int
    /// nil for a raw chunk; otherwise blockOffsets[i]..<blockOffsets[i+1] is block i
    /// (a block whose stored size equals its raw size is stored raw).
    let blockOffsets: [UInt32]?
    /// The payload on the heap; nil when it is in ``poolFile``.
    let base: UnsafeMutableRawPointer?
    /// The pool file holding the raw bytes at ``fileOffset`` (chunk ``fileIndex``).
    let poolFile: PoolFile?
    let fileOffset: Int64
    let fileIndex: Int

    /// Takes ownership of `base` (allocated with malloc).
    init(base: UnsafeMutableRawPointer, rawCount: Int, storedCount: Int, blockOffsets: [UInt32]?) {
        self.base = base
        self.rawCount = rawCount
        self.storedCount = storedCount
        self.blockOffsets = blockOffsets
        self.poolFile = nil
        self.fileOffset = 0
        self.fileIndex = 0
    }

    /// A raw chunk that owns its range of a pool file (see ``PoolFile/store``).
    init(poolFile: PoolFile, index: Int, offset: Int64, count: Int) {
        self.base = nil
        self.rawCount = count
        self.storedCount = count
        self.blockOffsets = nil
        self.poolFile = poolFile
        self.fileOffset = offset
        self.fileIndex = index
    }

    deinit {
        if let base { free(base) }
        poolFile?.release(index: fileIndex, offset: fileOffset, count: rawCount)
    }

    /// Calls `body` with the raw bytes (read into a temporary buffer when the
    /// chunk is in a pool file); nil when they cannot be read.
    func withRawBytes<T>(_ body: (UnsafeRawPointer) -> T) -> T? {
        precondition(blockOffsets == nil)
        if let base { return body(base) }
        let scratch = malloc(max(rawCount, 1))!
        defer { free(scratch) }
        guard readFromFile(0, rawCount, into: scratch) else { return nil }
        return body(scratch)
    }

    private func readFromFile(_ offset: Int, _ count: Int, into destination: UnsafeMutableRawPointer) -> Bool {
        guard let poolFile else { return false }
        var done = 0
        while done < count {
            let n = pread(poolFile.fd, destination + done, count - done, off_t(fileOffset + Int64(offset + done)))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    var isCompressed: Bool { blockOffsets != nil }

    /// Copies `count` bytes starting at `offset` within the chunk into `destination`.
    /// False only when a pool file could not be read (the reader gets EIO).
    @discardableResult
    func copy(from offset: Int, count: Int, into destination: UnsafeMutableRawPointer) -> Bool {
        precondition(offset >= 0 && count >= 0 && offset + count <= rawCount)
        guard let base else {
            // A pool file range is never rewritten while its chunk lives.
            return readFromFile(offset, count, into: destination)
        }
        guard let blockOffsets else {
            memcpy(destination, base + offset, count)
            return true
        }
        let blockSize = ChunkCodec.blockSize
        var position = offset
        var written = 0
        while written < count {
            let block = position / blockSize
            let blockStart = block * blockSize
            let blockRaw = min(blockSize, rawCount - blockStart)
            let storedStart = Int(blockOffsets[block])
            let storedLength = Int(blockOffsets[block + 1]) - storedStart
            let within = position - blockStart
            let take = min(blockRaw - within, count - written)
            let source = base + storedStart
            if storedLength == blockRaw {
                memcpy(destination + written, source + within, take)
            } else if within == 0 && take == blockRaw {
                // The whole block is wanted: decompress straight into the reply.
                _ = cachectl_LZ4_decompress_safe(
                    source.assumingMemoryBound(to: CChar.self),
                    (destination + written).assumingMemoryBound(to: CChar.self),
                    Int32(storedLength), Int32(blockRaw))
            } else {
                withUnsafeTemporaryAllocation(byteCount: blockSize, alignment: 16) { scratch in
                    _ = cachectl_LZ4_decompress_safe(
                        source.assumingMemoryBound(to: CChar.self),
                        scratch.baseAddress!.assumingMemoryBound(to: CChar.self),
                        Int32(storedLength), Int32(blockRaw))
                    memcpy(destination + written, scratch.baseAddress! + within, take)
                }
            }
            position += take
            written += take
        }
        return true
    }
}

/// LZ4 block compression of chunks, and the `auto` decision.
enum ChunkCodec {
    /// Unit of compression inside a chunk: small enough that a 128 KiB-1 MiB
    /// FUSE read decompresses little it does not need, large enough for LZ4 to
    /// find matches.
    static let blockSize = 64 * 1024
    /// `auto` stores a chunk raw unless LZ4 saves at least this fraction on the sample.
    static let minimumSaving = 0.10
    /// Blocks compressed to sample a chunk in `auto` mode (first, middle, last).
    static let sampleBlocks = 3

    /// Estimated stored/raw ratio of `count` bytes at `bytes`, from a sample of blocks.
    static func sampleRatio(_ bytes: UnsafeRawPointer, count: Int) -> Double {
        let blocks = (count + blockSize - 1) / blockSize
        guard blocks > 0 else { return 1 }
        let picks = Set([0, blocks / 2, blocks - 1].prefix(sampleBlocks))
        var raw = 0
        var stored = 0
        let bound = Int(cachectl_LZ4_compressBound(Int32(blockSize)))
        withUnsafeTemporaryAllocation(byteCount: bound, alignment: 16) { scratch in
            for block in picks {
                let start = block * blockSize
                let length = min(blockSize, count - start)
                let n = cachectl_LZ4_compress_default(
                    (bytes + start).assumingMemoryBound(to: CChar.self),
                    scratch.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(length), Int32(bound))
                raw += length
                stored += n > 0 ? min(Int(n), length) : length
            }
        }
        return raw == 0 ? 1 : Double(stored) / Double(raw)
    }

    /// Whether `mode` wants this chunk compressed (for `auto`, from a sample).
    static func shouldCompress(_ bytes: UnsafeRawPointer, count: Int, mode: CompressionMode) -> Bool {
        switch mode {
        case .off: false
        case .lz4: true
        case .auto: sampleRatio(bytes, count: count) <= 1 - minimumSaving
        }
    }

    /// A raw chunk holding a copy of `count` bytes.
    static func raw(_ bytes: UnsafeRawPointer, count: Int) -> StoredChunk {
        let base = malloc(max(count, 1))!
        memcpy(base, bytes, count)
        return StoredChunk(base: base, rawCount: count, storedCount: count, blockOffsets: nil)
    }

    /// A raw chunk that adopts a malloc'ed buffer without copying.
    static func adopt(_ base: UnsafeMutableRawPointer, count: Int) -> StoredChunk {
        StoredChunk(base: base, rawCount: count, storedCount: count, blockOffsets: nil)
    }

    /// LZ4-compresses every block; blocks that do not shrink stay raw. Returns a
    /// raw copy when compression saved nothing overall.
    static func compress(_ bytes: UnsafeRawPointer, count: Int) -> StoredChunk {
        let blocks = (count + blockSize - 1) / blockSize
        let bound = Int(cachectl_LZ4_compressBound(Int32(blockSize)))
        let work = malloc(max(1, blocks * bound))!
        defer { free(work) }
        var offsets = [UInt32](repeating: 0, count: blocks + 1)
        var used = 0
        for block in 0..<blocks {
            let start = block * blockSize
            let length = min(blockSize, count - start)
            let n = Int(
                cachectl_LZ4_compress_default(
                    (bytes + start).assumingMemoryBound(to: CChar.self),
                    (work + used).assumingMemoryBound(to: CChar.self), Int32(length), Int32(bound)))
            if n > 0 && n < length {
                used += n
            } else {
                memcpy(work + used, bytes + start, length)
                used += length
            }
            offsets[block + 1] = UInt32(used)
        }
        if used >= count { return raw(bytes, count: count) }
        let base = malloc(max(used, 1))!
        memcpy(base, work, used)
        return StoredChunk(base: base, rawCount: count, storedCount: used, blockOffsets: offsets)
    }
}
