import CachectlSystem
import Glibc

/// A source file as the pool knows it: device and inode, so hard links share chunks.
struct FileID: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
}

/// What makes cached chunks of a file valid: its size, mtime and ctime at the time
/// they were read. A different version means the source changed underneath.
///
/// Size and mtime alone miss an in-place rewrite of the same size whose mtime was put
/// back (`rsync --inplace -t`, a restore): setting the mtime itself changes the
/// ctime, which no unprivileged program can set. (statx's change cookie,
/// STATX_CHANGE_COOKIE, is not exported to userspace; ctime is what is reliable,
/// also over NFS where it maps to the server's change attribute.)
struct FileVersion: Equatable, Sendable {
    var size: Int64
    var mtimeSeconds: Int
    var mtimeNanoseconds: Int
    var ctimeSeconds: Int = 0
    var ctimeNanoseconds: Int = 0

    init(_ st: stat) {
        size = Int64(st.st_size)
        mtimeSeconds = st.st_mtim.tv_sec
        mtimeNanoseconds = st.st_mtim.tv_nsec
        ctimeSeconds = st.st_ctim.tv_sec
        ctimeNanoseconds = st.st_ctim.tv_nsec
    }

    init(size: Int64, mtimeSeconds: Int, mtimeNanoseconds: Int, ctimeSeconds: Int = 0, ctimeNanoseconds: Int = 0) {
        self.size = size
        self.mtimeSeconds = mtimeSeconds
        self.mtimeNanoseconds = mtimeNanoseconds
        self.ctimeSeconds = ctimeSeconds
        self.ctimeNanoseconds = ctimeNanoseconds
    }
}

/// The cache unit: chunk `index` (offset index × chunk size) of a file.
struct ChunkKey: Hashable, Sendable {
    var file: FileID
    var index: Int
}

/// Counters the daemon publishes; updated under the pool's lock.
struct PoolCounters: Sendable {
    var hits: UInt64 = 0
    var misses: UInt64 = 0
    var inflightWaits: UInt64 = 0
    var bytesFromRAM: UInt64 = 0
    var bytesFromSource: UInt64 = 0
    var prefetchCompleted: UInt64 = 0
    var prefetchHits: UInt64 = 0
    var evictions: UInt64 = 0
    var invalidations: UInt64 = 0
}

/// A snapshot of the pool for stats.
struct PoolSnapshot: Sendable {
    var limit: UInt64
    var payload: UInt64
    var peakPayload: UInt64
    var rawCached: UInt64
    var chunks: Int
    var compressedChunks: Int
    var counters: PoolCounters
    var files: [(path: String, raw: UInt64, stored: UInt64)]
}

/// The RAM pool: chunks keyed by (device, inode, index), evicted least recently
/// used first so that the stored payload never exceeds `limit` bytes.
///
/// libfuse calls in on its worker threads and the prefetcher on its own, so all
/// state sits behind one lock (a Condition, which also wakes readers waiting
/// for a chunk another thread is already reading). Copying out of a chunk
/// happens outside the lock; a reader's reference keeps an evicted chunk alive.
final class ChunkPool: @unchecked Sendable {
    /// Result of asking for a chunk.
    enum Acquire {
        /// In the pool.
        case hit(StoredChunk)
        /// Another thread is reading it: wait with ``wait(for:)``.
        case loading(Fill)
        /// Nobody has it: read it, then ``complete(_:with:)`` (or ``abandon(_:)``).
        case mustFill(Fill)
    }

    /// One chunk being read from the source.
    final class Fill: @unchecked Sendable {
        let key: ChunkKey
        let version: FileVersion
        var done = false
        var result: StoredChunk?
        init(key: ChunkKey, version: FileVersion) {
            self.key = key
            self.version = version
        }
    }

    private final class Node {
        let key: ChunkKey
        var chunk: StoredChunk
        var prefetched: Bool
        var newer: Node?
        var older: Node?
        init(key: ChunkKey, chunk: StoredChunk, prefetched: Bool) {
            self.key = key
            self.chunk = chunk
            self.prefetched = prefetched
        }
    }

    private struct FileRecord {
        var version: FileVersion
        var path: String
        var chunks: Set<Int> = []
        var raw: UInt64 = 0
        var stored: UInt64 = 0
    }

    let limit: UInt64
    private let condition = Condition()
    private var nodes: [ChunkKey: Node] = [:]
    private var newest: Node?
    private var oldest: Node?
    private var fills: [ChunkKey: Fill] = [:]
    private var files: [FileID: FileRecord] = [:]
    private var payload: UInt64 = 0
    private var peakPayload: UInt64 = 0
    private var rawCached: UInt64 = 0
    private var compressedChunks = 0
    private var counters = PoolCounters()

    init(limit: UInt64) {
        self.limit = limit
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// Records the version of a file just opened or stat'ed. When it differs from
    /// the version its cached chunks were read at, drops them and returns true.
    @discardableResult
    func noteVersion(_ version: FileVersion, of file: FileID, path: String) -> Bool {
        locked {
            guard var record = files[file] else {
                files[file] = FileRecord(version: version, path: path)
                return false
            }
            record.path = path
            if record.version == version {
                files[file] = record
                return false
            }
            files[file] = record
            dropChunksLocked(of: file)
            files[file]?.version = version
            counters.invalidations += 1
            return true
        }
    }

    /// Looks a chunk up for a reader. `demand` readers count hits and misses;
    /// prefetch does not.
    func acquire(_ key: ChunkKey, version: FileVersion, demand: Bool) -> Acquire {
        locked {
            if let node = nodes[key], files[key.file]?.version == version {
                touchLocked(node)
                if demand {
                    counters.hits += 1
                    if node.prefetched {
                        node.prefetched = false
                        counters.prefetchHits += 1
                    }
                }
                return .hit(node.chunk)
            }
            if let fill = fills[key], fill.version == version {
                if demand { counters.inflightWaits += 1 }
                return .loading(fill)
            }
            if demand { counters.misses += 1 }
            let fill = Fill(key: key, version: version)
            fills[key] = fill
            return .mustFill(fill)
        }
    }

    /// Every chunk of `file` at `version` (`chunks` of them, in order) when all
    /// are cached, marked used; else nil. A passthrough open takes them.
    func allChunks(_ file: FileID, version: FileVersion, chunks count: Int) -> [StoredChunk]? {
        locked {
            guard count > 0, let record = files[file], record.version == version, record.chunks.count == count else {
                return nil
            }
            var chunks: [StoredChunk] = []
            chunks.reserveCapacity(count)
            for index in 0..<count {
                guard let node = nodes[ChunkKey(file: file, index: index)] else { return nil }
                chunks.append(node.chunk)
            }
            for index in 0..<count {
                if let node = nodes[ChunkKey(file: file, index: index)] { touchLocked(node) }
            }
            return chunks
        }
    }

    /// Whether the chunk is cached or being read (prefetch skips those).
    func isPresentOrLoading(_ key: ChunkKey) -> Bool {
        locked { nodes[key] != nil || fills[key] != nil }
    }

    /// The cached chunk, without counting a hit or refreshing its LRU position.
    func peek(_ key: ChunkKey) -> StoredChunk? {
        locked { nodes[key]?.chunk }
    }

    /// Blocks until another thread's fill finishes; nil when it failed.
    func wait(for fill: Fill) -> StoredChunk? {
        locked {
            while !fill.done { condition.wait() }
            return fill.result
        }
    }

    /// Stores a filled chunk (evicting the least recently used chunks to make room)
    /// unless the file changed while it was read, and wakes waiting readers.
    func complete(_ fill: Fill, with chunk: StoredChunk, sourceBytes: Int, prefetched: Bool) {
        locked {
            fill.done = true
            fill.result = chunk
            if fills[fill.key] === fill { fills[fill.key] = nil }
            counters.bytesFromSource += UInt64(sourceBytes)
            if prefetched { counters.prefetchCompleted += 1 }
            if files[fill.key.file]?.version == fill.version {
                insertLocked(fill.key, chunk, prefetched: prefetched)
            }
            condition.broadcast()
        }
    }

    /// Ends a fill that failed (read error); waiting readers get nil and retry.
    func abandon(_ fill: Fill) {
        locked {
            fill.done = true
            if fills[fill.key] === fill { fills[fill.key] = nil }
            condition.broadcast()
        }
    }

    /// Swaps a raw chunk for its compressed form if it is still the cached one.
    func replace(_ key: ChunkKey, old: StoredChunk, with new: StoredChunk) {
        locked {
            guard let node = nodes[key], node.chunk === old else { return }
            payload = payload - UInt64(old.storedCount) + UInt64(new.storedCount)
            files[key.file]?.stored -= UInt64(old.storedCount)
            files[key.file]?.stored += UInt64(new.storedCount)
            if new.isCompressed && !old.isCompressed { compressedChunks += 1 }
            if old.isCompressed && !new.isCompressed { compressedChunks -= 1 }
            node.chunk = new
        }
    }

    func countBytesFromRAM(_ n: Int) {
        locked { counters.bytesFromRAM += UInt64(n) }
    }

    /// Drops every cached chunk of every file (unmount).
    func removeAll() {
        locked {
            for file in Array(files.keys) { dropChunksLocked(of: file) }
        }
    }

    func snapshot(topFiles: Int = 20) -> PoolSnapshot {
        locked {
            let top = files.values.filter { $0.raw > 0 }.sorted { $0.raw > $1.raw }.prefix(topFiles)
            return PoolSnapshot(
                limit: limit, payload: payload, peakPayload: peakPayload, rawCached: rawCached,
                chunks: nodes.count, compressedChunks: compressedChunks, counters: counters,
                files: top.map { (path: $0.path, raw: $0.raw, stored: $0.stored) })
        }
    }

    // MARK: - Under the lock

    private func insertLocked(_ key: ChunkKey, _ chunk: StoredChunk, prefetched: Bool) {
        let size = UInt64(chunk.storedCount)
        guard size <= limit else { return }
        if let existing = nodes[key] { removeLocked(existing) }
        while payload + size > limit, let victim = oldest {
            removeLocked(victim)
            counters.evictions += 1
        }
        let node = Node(key: key, chunk: chunk, prefetched: prefetched)
        nodes[key] = node
        node.older = newest
        newest?.newer = node
        newest = node
        if oldest == nil { oldest = node }
        payload += size
        rawCached += UInt64(chunk.rawCount)
        if chunk.isCompressed { compressedChunks += 1 }
        peakPayload = max(peakPayload, payload)
        files[key.file]?.chunks.insert(key.index)
        files[key.file]?.raw += UInt64(chunk.rawCount)
        files[key.file]?.stored += size
    }

    private func removeLocked(_ node: Node) {
        unlinkLocked(node)
        nodes[node.key] = nil
        payload -= UInt64(node.chunk.storedCount)
        rawCached -= UInt64(node.chunk.rawCount)
        if node.chunk.isCompressed { compressedChunks -= 1 }
        files[node.key.file]?.chunks.remove(node.key.index)
        files[node.key.file]?.raw -= UInt64(node.chunk.rawCount)
        files[node.key.file]?.stored -= UInt64(node.chunk.storedCount)
    }

    private func unlinkLocked(_ node: Node) {
        if let newer = node.newer { newer.older = node.older } else { newest = node.older }
        if let older = node.older { older.newer = node.newer } else { oldest = node.newer }
        node.newer = nil
        node.older = nil
    }

    private func touchLocked(_ node: Node) {
        guard newest !== node else { return }
        unlinkLocked(node)
        node.older = newest
        newest?.newer = node
        newest = node
        if oldest == nil { oldest = node }
    }

    private func dropChunksLocked(of file: FileID) {
        guard let record = files[file] else { return }
        for index in record.chunks {
            if let node = nodes[ChunkKey(file: file, index: index)] { removeLocked(node) }
        }
        // Fills in flight for the old version will not be inserted (version check).
    }
}
