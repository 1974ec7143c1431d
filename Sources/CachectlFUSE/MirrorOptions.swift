import CachectlSystem

/// Everything `cachectl fuse mount` can be told.
public struct MirrorOptions: Sendable {
    /// Directory mirrored read-only.
    public var source: String
    /// Where the mirror appears.
    public var mountpoint: String
    /// Maximum bytes of chunk payload (compressed size when compressed) kept in RAM.
    public var poolBytes: UInt64
    /// Cache unit. 4 MiB cost the least CPU, cold and from the pool, of 1/2/4/8 MiB
    /// on integration/benchmarks/fuse (README, FUSE section).
    public var chunkBytes: Int = MirrorOptions.defaultChunkBytes
    public var compression: CompressionMode = .auto
    /// How many following files of the same directory (sorted by name) to read
    /// into the pool when a file is opened: the other shards of a model.
    public var prefetchFiles: Int = 2
    /// Chunks read ahead of the last chunk a reader touched, each fetched by its
    /// own prefetch job (README, FUSE section: what a latency-bound share needs).
    public var readAheadChunks: Int = 8
    /// Threads that compress and prefetch: one per read-ahead chunk in flight.
    public var prefetchThreads: Int = 8
    /// Serve files whose chunks are all in the pool by FUSE passthrough (Linux
    /// 6.9+, CAP_SYS_ADMIN) when the kernel allows; off: the daemon answers
    /// every read, as before.
    public var passthrough: Bool = true
    /// Upper bound on libfuse's worker threads.
    public var fuseThreads: Int = 8
    /// Let other users (and root) see the mount (needs user_allow_other in
    /// /etc/fuse.conf when not root).
    public var allowOther: Bool = false
    /// Seconds the kernel may cache attributes and names; a source change is
    /// seen at the first open after this.
    public var attributeTimeout: Double = 1.0
    /// Directory of the stats file, or nil for none.
    public var statsDirectory: String? = FuseStatsFile.defaultDirectory
    /// Seconds between stats file updates.
    public var statsInterval: Double = 1.0

    public static let defaultChunkBytes = 4 << 20
    public static let minimumChunkBytes = 64 << 10
    public static let maximumChunkBytes = 64 << 20

    public init(source: String, mountpoint: String, poolBytes: UInt64) {
        self.source = source
        self.mountpoint = mountpoint
        self.poolBytes = poolBytes
    }

    /// Checks values a person typed; the error names the field.
    public func validate() throws(CachectlError) {
        if poolBytes < UInt64(chunkBytes) {
            throw .usage(
                ["pool"],
                "pool \(ByteSize.format(poolBytes)) is smaller than one chunk (\(ByteSize.format(UInt64(chunkBytes))))",
                hint: "choose a larger pool or a smaller chunk")
        }
        if chunkBytes < Self.minimumChunkBytes || chunkBytes > Self.maximumChunkBytes {
            throw .usage(
                ["chunk"],
                "chunk must be between \(ByteSize.format(UInt64(Self.minimumChunkBytes))) and \(ByteSize.format(UInt64(Self.maximumChunkBytes)))"
            )
        }
        if chunkBytes % 4096 != 0 { throw .usage(["chunk"], "chunk must be a multiple of 4 KiB") }
        if prefetchFiles < 0 || prefetchFiles > 64 { throw .usage(["prefetch"], "prefetch must be between 0 and 64") }
    }
}
