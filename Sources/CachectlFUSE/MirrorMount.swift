import CCachectlFuse
import CFuse3
import CachectlMount
import CachectlSystem
import Dispatch
import FoundationEssentials
import Glibc

/// A mounted read-only mirror: the libfuse session, its request loop on a
/// thread this object owns, the prefetch threads, and the stats writer.
///
///     let mount = try MirrorMount.mount(options)   // returns once mounted
///     ...
///     mount.stop()                                  // unmounts; idempotent
public final class MirrorMount: @unchecked Sendable {
    public let options: MirrorOptions
    let mirror: SourceMirror
    private let session: OpaquePointer
    private let condition = Condition()
    private var loopFinished = false
    private var stopped = false
    private var stopDone = false
    private let statsPath: String?
    /// Signalled when the stats writer has written its last file, so stop() can
    /// remove the file without the writer putting it back.
    private let statsWriterDone = DispatchSemaphore(value: 0)

    private init(options: MirrorOptions, mirror: SourceMirror, session: OpaquePointer) {
        self.options = options
        self.mirror = mirror
        self.session = session
        self.statsPath = options.statsDirectory.map { FuseStatsFile.path(for: options.mountpoint, in: $0) }
    }

    /// Mounts `options.source` read-only on `options.mountpoint` and starts
    /// serving; returns with the mount's readahead raised (or after 5 s without).
    /// Throws when the source or mountpoint is unusable or the mount fails.
    public static func mount(_ options: MirrorOptions) throws(CachectlError) -> MirrorMount {
        try options.validate()
        var st = stat()
        guard stat(options.mountpoint, &st) == 0 else {
            throw CachectlError(
                "stat", path: options.mountpoint, errno: errno, hint: "create the mountpoint directory first")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw CachectlError.failed(
                "fuse mount", path: options.mountpoint, hint: "the mountpoint must be a directory")
        }
        guard access("/dev/fuse", R_OK | W_OK) == 0 else {
            throw CachectlError(
                "open", path: "/dev/fuse", errno: errno,
                hint: "load the fuse module (modprobe fuse) and install fuse3; containers need --device /dev/fuse")
        }
        if let statsDirectory = options.statsDirectory { try FuseStatsFile.prepareDirectory(statsDirectory) }
        // Each step is undone, newest first, when a later one fails: nothing is left
        // mounted, running or allocated by a mount that did not come up.
        let log = ChangeLog(check: false)
        do throws(CachectlError) {
            var mirror: SourceMirror?
            try log.perform(
                "open \(options.source)",
                revert: {
                    mirror?.shutdown()
                    mirror?.pool.removeAll()
                }
            ) { () throws(CachectlError) in mirror = try SourceMirror(options: options) }
            guard let mirror else { preconditionFailure("opened above") }
            var session: OpaquePointer?
            try log.perform(
                "mount \(fsname(options.source)) on \(options.mountpoint)",
                revert: {
                    mirror.connection.detach()
                    cachectl_fuse_unmount_and_destroy(session)
                }
            ) { () throws(CachectlError) in
                session = try fuseMount(options, mirror: mirror)
            }
            guard let session else { preconditionFailure("mounted above") }
            let mount = MirrorMount(options: options, mirror: mirror, session: session)
            // Without a request loop nothing serves the mount: it goes at once.
            try log.perform("start the request loop") { () throws(CachectlError) in try mount.startThreads() }
            return mount
        } catch {
            log.rollBack()
            throw error
        }
    }

    /// Mounts with libfuse and attaches the mirror to the new session.
    private static func fuseMount(_ options: MirrorOptions, mirror: SourceMirror) throws(CachectlError) -> OpaquePointer
    {
        var fuseOptions = [
            "ro", "default_permissions", "subtype=cachectl", "fsname=" + Self.fsname(options.source),
            "max_read=\(FuseOperations.maxRead)",
        ]
        if options.allowOther { fuseOptions.append("allow_other") }
        let argv = ["cachectl", "-o", fuseOptions.joined(separator: ",")]
        let userData = Unmanaged.passUnretained(mirror).toOpaque()
        var cStrings = argv.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        // libfuse copies the table (fuse_fs_new), so it need not outlive the call.
        var operations = FuseOperations.table()
        let handle = cStrings.withUnsafeMutableBufferPointer { buffer in
            cachectl_fuse_mount(
                Int32(argv.count), buffer.baseAddress, &operations, MemoryLayout<fuse_operations>.size, userData,
                options.mountpoint)
        }
        guard let handle else {
            throw CachectlError.failed(
                "fuse mount", path: options.mountpoint,
                hint:
                    "libfuse could not mount (see its message above); is something already mounted there, and may this user mount FUSE?"
            )
        }
        mirror.session = handle
        mirror.connection.attach(cachectl_fuse_fd(handle))
        // Passthrough needs the INIT and OPEN replies amended (libfuse 3.14 has no
        // API for it); without the hook it is simply never offered.
        if options.passthrough { _ = cachectl_fuse_hook_replies(handle) }
        return handle
    }

    /// `fsname` shows in /proc/mounts; commas would split the option string.
    static func fsname(_ source: String) -> String {
        "cachectl:" + source.replacing(",", with: "_")
    }

    /// Throws only when the request loop's thread cannot start; without the stats
    /// writer there is no stats file, without the tuner the bdi's default readahead.
    private func startThreads() throws(CachectlError) {
        try startThread("cachectl-fuse-loop") { [self] in
            _ = cachectl_fuse_loop(session, UInt32(max(2, options.fuseThreads)))
            condition.lock()
            loopFinished = true
            condition.broadcast()
            condition.unlock()
        }
        if statsPath != nil {
            do {
                try startThread("cachectl-fuse-stats") { [self] in
                    statsLoop()
                    statsWriterDone.signal()
                }
            } catch {
                statsWriterDone.signal()
            }
        }
        // Waited for: a file takes its readahead window from the bdi when it is opened
        // (file_ra_state_init), so one opened before the tuner ran would keep 128 KiB.
        let tuned = DispatchSemaphore(value: 0)
        if (try? startThread("cachectl-fuse-ra") { [self] in
            tuneReadahead()
            tuned.signal()
        }) != nil {
            _ = tuned.wait(timeout: .now() + .seconds(5))
        }
    }

    /// The bdi of a FUSE mount defaults to 128 KiB readahead; large sequential
    /// reads of model files go faster with more requests in flight. Best effort
    /// (needs root); runs on its own thread because stat() of the mountpoint is
    /// answered by the loop.
    private func tuneReadahead() {
        var st = stat()
        guard stat(options.mountpoint, &st) == 0 else { return }
        let kib = max(1024, min(options.chunkBytes / 1024, 16384))
        _ = try? Readahead.set(kilobytes: UInt64(kib), for: DeviceNumber(UInt64(st.st_dev)))
    }

    private func statsLoop() {
        var last: FuseStats?
        while !waitForLoopEnd(timeout: options.statsInterval) {
            let current = stats()
            if let last, current.sameCounters(as: last) { continue }
            if let statsPath { try? FuseStatsFile.write(current, to: statsPath) }
            last = current
        }
    }

    /// True when the loop has ended; waits at most `timeout` seconds.
    private func waitForLoopEnd(timeout: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Monotonic.now() + timeout
        while !loopFinished {
            if !condition.wait(until: deadline) { break }
        }
        return loopFinished
    }

    /// A snapshot of the pool and counters.
    public func stats() -> FuseStats {
        let pool = mirror.pool.snapshot()
        let prefetch = mirror.prefetcher.counts
        let ratio = pool.payload == 0 ? 1 : Double(pool.rawCached) / Double(pool.payload)
        return FuseStats(
            source: options.source, mountpoint: options.mountpoint, pid: getpid(),
            updatedAt: Date().timeIntervalSince1970, compression: options.compression.rawValue,
            chunkBytes: UInt64(options.chunkBytes), poolLimitBytes: pool.limit, poolUsedBytes: pool.payload,
            poolPeakBytes: pool.peakPayload, cachedBytes: pool.rawCached, chunks: pool.chunks,
            compressedChunks: pool.compressedChunks, compressionRatio: ratio,
            overheadBytes: Self.estimatedOverhead(chunks: pool.chunks, chunkBytes: options.chunkBytes),
            hits: pool.counters.hits, misses: pool.counters.misses, inflightWaits: pool.counters.inflightWaits,
            bytesFromRam: pool.counters.bytesFromRAM, bytesFromSource: pool.counters.bytesFromSource,
            prefetchScheduled: prefetch.scheduled, prefetchCompleted: pool.counters.prefetchCompleted,
            prefetchCancelled: prefetch.cancelled, prefetchHits: pool.counters.prefetchHits,
            evictions: pool.counters.evictions, invalidations: pool.counters.invalidations,
            files: pool.files.map {
                .init(
                    path: $0.path, cachedBytes: $0.raw, storedBytes: $0.stored,
                    compressionRatio: $0.stored == 0 ? 1 : Double($0.raw) / Double($0.stored))
            },
            passthrough: mirror.passthroughStatus,
            passthroughOpens: mirror.passthroughOpens.load(ordering: .relaxed))
    }

    /// Bookkeeping per cached chunk: the LRU node and dictionary slot (~160 B),
    /// the chunk object (~64 B) and a 4-byte offset per LZ4 block.
    static func estimatedOverhead(chunks: Int, chunkBytes: Int) -> UInt64 {
        let perChunk = 224 + 4 * (chunkBytes / ChunkCodec.blockSize + 1)
        return UInt64(chunks * perChunk)
    }

    /// Blocks until the filesystem is unmounted (by ``stop()``, a signal handler
    /// calling it, or `fusermount3 -u` / `umount` from outside).
    public func waitUntilUnmounted() {
        condition.lock()
        while !loopFinished { condition.wait() }
        condition.unlock()
    }

    /// Ends the request loop, unmounts (lazily if files are still open: they see
    /// ENOTCONN), stops prefetch, frees the pool and removes the stats file.
    /// Safe to call more than once and from any thread except a FUSE callback.
    public func stop() {
        condition.lock()
        if stopped {
            // Another thread (the signal watcher) is stopping: wait for it to finish.
            while !stopDone { condition.wait() }
            condition.unlock()
            return
        }
        stopped = true
        condition.unlock()
        // The wake-up signal can land just before the loop starts waiting: repeat.
        while cachectl_fuse_request_exit(session) != 0 {
            if waitForLoopEnd(timeout: 0.05) { break }
        }
        waitUntilUnmounted()
        if statsPath != nil { statsWriterDone.wait() }
        mirror.connection.detach()  // backing ids die with the connection
        cachectl_fuse_unmount_and_destroy(session)
        mirror.shutdown()
        mirror.pool.removeAll()
        if let statsPath { unlink(statsPath) }
        condition.lock()
        stopDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Serves until SIGINT, SIGTERM or SIGHUP, or an unmount from outside, then
    /// cleans up. Blocks those signals in the calling thread first, so call it
    /// before starting other threads: they inherit the mask, and a thread of
    /// ours takes the signal with sigwait(3) instead of a handler.
    ///
    /// `mounted` is called once the mount is up (or with the error).
    public static func serveUntilSignalled(
        _ options: MirrorOptions, mounted: (Result<MirrorMount, CachectlError>) -> Void
    ) throws(CachectlError) {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let mount: MirrorMount
        do {
            mount = try MirrorMount.mount(options)
        } catch {
            mounted(.failure(error))
            throw error
        }
        let waitSet = signals
        do {
            try startThread("cachectl-fuse-signals") {
                var set = waitSet
                var received: Int32 = 0
                if sigwait(&set, &received) == 0 { mount.stop() }
            }
        } catch {
            // Nothing would take the blocked signals: do not serve at all.
            mount.stop()
            mounted(.failure(error))
            throw error
        }
        mounted(.success(mount))
        mount.waitUntilUnmounted()
        mount.stop()
    }
}
