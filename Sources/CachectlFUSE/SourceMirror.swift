import CCachectlFuse
import CCachectlShims
import CachectlMount
import CachectlSystem
import FoundationEssentials
import Glibc
import Synchronization

/// An open source file, as a FUSE file handle refers to it.
final class SourceFileHandle: @unchecked Sendable {
    let file: SourceDescriptor
    let id: FileID
    let version: FileVersion
    let path: String
    /// Cancels this file's read-ahead when its last handle closes.
    let stream: CancelToken
    /// > 0 when the kernel reads this open file from a pool file (passthrough).
    let backingID: Int32
    private let readAheadFrom = Mutex(-1)
    /// Highest chunk index queued for read-ahead by this handle.
    private let queuedThrough = Mutex(-1)

    init(
        file: SourceDescriptor, id: FileID, version: FileVersion, path: String, stream: CancelToken,
        backingID: Int32 = 0
    ) {
        self.file = file
        self.id = id
        self.version = version
        self.path = path
        self.stream = stream
        self.backingID = backingID
    }

    /// The part of `lower..<upper` not queued before by this handle, marked queued.
    /// A reader that jumped back more than a window starts afresh.
    func claimReadAhead(_ lower: Int, _ upper: Int) -> Range<Int> {
        queuedThrough.withLock { through in
            if lower + 2 * (upper - lower) < through { through = lower - 1 }
            let start = max(lower, through + 1)
            guard start < upper else { return start..<start }
            through = upper - 1
            return start..<upper
        }
    }

    /// True once per chunk index a reader moves past, so read-ahead is scheduled
    /// when a reader enters a new chunk rather than on every FUSE read.
    func shouldReadAhead(from index: Int) -> Bool {
        readAheadFrom.withLock { readAheadFrom in
            guard index > readAheadFrom else { return false }
            readAheadFrom = index
            return true
        }
    }
}

/// The filesystem behind the mount, free of libfuse: resolves paths under the
/// source directory, serves reads from the chunk pool, and drives prefetch.
/// The FUSE callbacks (FuseOperations.swift) only translate to and from C.
/// Methods return a negative errno on failure, as FUSE wants.
final class SourceMirror: @unchecked Sendable {
    let options: MirrorOptions
    private let readahead = ReadaheadHint()
    let pool: ChunkPool
    let prefetcher = Prefetcher()
    /// The session's /dev/fuse descriptor, for passthrough's backing ids.
    let connection = FuseConnection()
    /// The libfuse session (set by MirrorMount before its loop runs): the init
    /// callback asks for passthrough through it.
    nonisolated(unsafe) var session: OpaquePointer?
    private enum Passthrough {
        case undecided
        case on(PoolStore)
        case off(String)
    }
    private let passthrough = Mutex(Passthrough.undecided)
    let passthroughOpens = Atomic<UInt64>(0)
    /// Descriptor of the source directory: every lookup is relative to it,
    /// so the source can be renamed or over-mounted without confusing the mirror.
    let sourceFD: Int32
    /// Open files (handles per file, and the token that cancels their read-ahead)
    /// and the sibling prefetch of each directory.
    private struct Streams {
        var files: [FileID: FileStream] = [:]
        var siblings: [String: CancelToken] = [:]
    }
    /// A source file with open handles. The kernel wants every open of a file
    /// in the same mode while any is open (passthrough of one backing file, or
    /// cached), so the first open decides for all until the last one closes;
    /// a passthrough stream keeps its chunks (`pins`) alive until then.
    private struct FileStream {
        var handles: Int
        var token: CancelToken
        var backingID: Int32 = 0
        var pins: [StoredChunk] = []
    }
    private let streams = Mutex(Streams())

    init(options: MirrorOptions) throws(CachectlError) {
        self.options = options
        self.pool = ChunkPool(limit: options.poolBytes)
        self.sourceFD = try sys("open", options.source, hint: "SOURCE must be a readable directory") {
            Glibc.open(options.source, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        prefetcher.perform = { [unowned self] job in self.perform(job) }
        prefetcher.start(threads: max(1, options.prefetchThreads))
    }

    /// Stops background work; the pool is freed with the mirror.
    func shutdown() {
        connection.detach()
        prefetcher.stop()
        streams.withLock { streams in
            for (_, stream) in streams.files { stream.token.cancel() }
            for (_, token) in streams.siblings { token.cancel() }
        }
    }

    deinit { close(sourceFD) }

    // MARK: - Passthrough

    /// The pool-file store when passthrough is on for this mount; decided at the
    /// first call after the kernel's INIT (the first open): the INIT reply must
    /// have carried FUSE_PASSTHROUGH and the kernel must accept a backing file.
    func poolStore() -> PoolStore? {
        guard options.passthrough else { return nil }
        return passthrough.withLock { state in
            switch state {
            case .on(let store): return store
            case .off: return nil
            case .undecided:
                guard let session, cachectl_fuse_passthrough_offered(session) != 0 else {
                    state = .off("not requested at INIT")
                    return nil
                }
                switch PoolStore.probe(connection) {
                case .success(let store):
                    state = .on(store)
                    return store
                case .failure(let why):
                    state = .off(why.description)
                    return nil
                }
            }
        }
    }

    /// The pool file holding every chunk of this version of a file, with those
    /// chunks, when passthrough is on and the whole file is in the pool; else nil.
    /// Chunks the pool holds elsewhere (LZ4-compressed, like a GGUF header's, or
    /// raw on the heap) are written to the pool file first, raw, when they are
    /// few (at most an eighth of the file, or two chunks): a file that is mostly
    /// compressible stays compressed and is served by the daemon.
    private func wholeFileInPoolFile(_ id: FileID, version: FileVersion) -> (PoolFile, [StoredChunk])? {
        guard let store = poolStore() else { return nil }
        let count = chunkCount(version.size)
        guard var chunks = pool.allChunks(id, version: version, chunks: count),
            let poolFile = store.file(for: id, version: version)
        else { return nil }
        let elsewhere = chunks.indices.filter { chunks[$0].poolFile !== poolFile }
        let elsewhereBytes = elsewhere.reduce(Int64(0)) { $0 + Int64(chunks[$1].rawCount) }
        guard elsewhereBytes <= max(2 * Int64(options.chunkBytes), version.size / 8) else { return nil }
        for index in elsewhere {
            let old = chunks[index]
            let buffer = malloc(max(old.rawCount, 1))!
            defer { free(buffer) }
            guard old.copy(from: 0, count: old.rawCount, into: buffer),
                let raw = poolFile.store(
                    index: index, offset: Int64(index) * Int64(options.chunkBytes), bytes: buffer, count: old.rawCount)
            else { return nil }
            pool.replace(ChunkKey(file: id, index: index), old: old, with: raw)
            chunks[index] = raw
        }
        return (poolFile, chunks)
    }

    /// "on", "off: why", "disabled" (--passthrough off) or "undecided" (no open yet).
    var passthroughStatus: String {
        guard options.passthrough else { return "disabled" }
        return passthrough.withLock { state in
            switch state {
            case .undecided: "undecided"
            case .on: "on"
            case .off(let why): "off: " + why
            }
        }
    }

    /// "/a/b" → "a/b"; "/" → ".".
    static func relative(_ path: String) -> String {
        let trimmed = path.drop { $0 == "/" }
        return trimmed.isEmpty ? "." : String(trimmed)
    }

    // MARK: - Resolution

    /// Opens `relative` beneath the source without following any symlink, at any
    /// component (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW
    /// walk on older kernels). The kernel resolves the mirror's symlinks itself, in
    /// the mirror, before asking us: a path the daemon gets never needs a symlink
    /// followed, so one met on the way means a directory was swapped for a link
    /// (perhaps to outside the source) and the lookup fails with ELOOP.
    /// Returns the descriptor or a negative errno.
    func openBeneath(_ relative: String, _ flags: Int32) -> Int32 {
        let fd = cachectl_open_beneath(sourceFD, relative, flags, 0)
        return fd < 0 ? -errno : fd
    }

    /// lstat(2) of `relative`, resolved beneath the source. 0 or a negative errno.
    func statBeneath(_ relative: String, _ st: UnsafeMutablePointer<stat>) -> Int32 {
        let fd = openBeneath(relative, cachectl_o_path() | O_NOFOLLOW)
        if fd < 0 { return fd }
        defer { close(fd) }
        return fstat(fd, st) == 0 ? 0 : -errno
    }

    // MARK: - Metadata

    func getattr(_ path: String, _ st: UnsafeMutablePointer<stat>) -> Int32 {
        statBeneath(Self.relative(path), st)
    }

    func readlink(_ path: String, _ buffer: UnsafeMutablePointer<CChar>, _ size: Int) -> Int32 {
        guard size > 0 else { return -EINVAL }
        let fd = openBeneath(Self.relative(path), cachectl_o_path() | O_NOFOLLOW)
        if fd < 0 { return fd }
        defer { close(fd) }
        let n = Glibc.readlinkat(fd, "", buffer, size - 1)
        if n < 0 { return -errno }
        buffer[n] = 0  // FUSE wants a terminated string, truncated to fit
        return 0
    }

    /// The POSIX ACL names the kernel asks for to enforce ACLs (FUSE_CAP_POSIX_ACL).
    static let aclNames: Set<String> = ["system.posix_acl_access", "system.posix_acl_default"]

    /// getxattr(2) for the POSIX ACLs only, so the kernel enforces the source's ACLs
    /// with the caller's credentials (see FuseOperations `init`). Other names, and
    /// sources without ACL support, answer ENODATA ("no such attribute"): never
    /// ENOSYS or EOPNOTSUPP, which would make the kernel stop asking or deny access.
    func getxattr(_ path: String, name: String, _ value: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int32 {
        guard Self.aclNames.contains(name) else { return -ENODATA }
        let fd = openBeneath(Self.relative(path), cachectl_o_path() | O_NOFOLLOW)
        if fd < 0 { return fd }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return -errno }
        guard st.st_mode & S_IFMT != S_IFLNK else { return -ENODATA }
        // An O_PATH descriptor cannot be read for xattrs; its /proc link can.
        let n = cachectl_fd_getxattr(fd, name, value, UInt(size))
        if n >= 0 { return Int32(n) }
        let code = errno
        return code == ERANGE ? -ERANGE : (code == ENODATA || code == EOPNOTSUPP ? -ENODATA : -code)
    }

    /// A descriptor of a source directory, or a negative errno.
    func openDirectory(_ path: String) -> Int32 {
        openBeneath(Self.relative(path), O_RDONLY | O_DIRECTORY)
    }

    /// Calls `add` with each entry name of the directory open at `fd` (from
    /// the start); stops when it returns false.
    func readdir(fd: Int32, _ add: (UnsafePointer<CChar>) -> Bool) -> Int32 {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if copy < 0 { return -errno }
        guard let dir = fdopendir(copy) else {
            let code = errno
            close(copy)
            return -code
        }
        defer { closedir(dir) }
        rewinddir(dir)  // the copy shares the offset with earlier listings
        while let entry = Glibc.readdir(dir) {
            let keepGoing = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { add($0) }
            }
            if !keepGoing { break }
        }
        return 0
    }

    /// Entry names of a source directory (for sibling prefetch).
    func entryNames(_ path: String) -> [String] {
        let fd = openDirectory(path)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var names: [String] = []
        _ = readdir(fd: fd) {
            names.append(String(cString: $0))
            return true
        }
        return names
    }

    func statfs(_ out: UnsafeMutablePointer<statvfs>) -> Int32 {
        fstatvfs(sourceFD, out) == 0 ? 0 : -errno
    }

    // MARK: - Files

    /// Opens a source file read-only. `keepCache` is false when the source
    /// changed since its chunks were cached, so the kernel drops its page cache too.
    func open(_ path: String, flags: Int32) -> Result<(SourceFileHandle, keepCache: Bool), Errno32> {
        if flags & O_ACCMODE != O_RDONLY || flags & (O_TRUNC | O_APPEND | O_CREAT) != 0 {
            return .failure(Errno32(EROFS))
        }
        let relative = Self.relative(path)
        // O_NONBLOCK: a file swapped for a FIFO since the lookup must not block
        // this FUSE thread in open(2); anything but a regular file is refused.
        let fd = openBeneath(relative, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        if fd < 0 { return .failure(Errno32(-fd)) }
        let file = SourceDescriptor(fd)
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(Errno32(errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else { return .failure(Errno32(EIO)) }
        let id = FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        let version = FileVersion(st)
        let changed = pool.noteVersion(version, of: id, path: path)
        // Outside the streams lock: may copy a few chunks into the pool file.
        let whole = changed ? nil : wholeFileInPoolFile(id, version: version)
        let (token, backingID): (CancelToken, Int32) = streams.withLock { streams in
            if var stream = streams.files[id] {
                stream.handles += 1
                streams.files[id] = stream
                return (stream.token, stream.backingID)
            }
            var stream = FileStream(handles: 1, token: CancelToken())
            // Passthrough when every chunk of this version is in one pool file.
            if let (poolFile, chunks) = whole, let backing = poolFile.backingID() {
                stream.backingID = backing
                stream.pins = chunks
            }
            streams.files[id] = stream
            return (stream.token, stream.backingID)
        }
        let handle = SourceFileHandle(
            file: file, id: id, version: version, path: path, stream: token, backingID: backingID)
        if backingID > 0 {
            passthroughOpens.add(1, ordering: .relaxed)
        } else {
            scheduleReadAhead(handle, after: -1)
        }
        if options.prefetchFiles > 0 { scheduleSiblings(of: relative) }
        return .success((handle, keepCache: !changed))
    }

    func release(_ handle: SourceFileHandle) {
        streams.withLock { streams in
            guard var stream = streams.files[handle.id] else { return }
            if stream.handles <= 1 {
                stream.token.cancel()
                streams.files[handle.id] = nil
            } else {
                stream.handles -= 1
                streams.files[handle.id] = stream
            }
        }
    }

    /// Reads up to `size` bytes at `offset` through the pool. Returns the byte
    /// count or a negative errno.
    func read(_ handle: SourceFileHandle, into buffer: UnsafeMutableRawPointer, size: Int, offset: Int64) -> Int32 {
        let fileSize = handle.version.size
        guard offset < fileSize, size > 0 else { return 0 }
        let end = min(offset + Int64(size), fileSize)
        let chunkSize = Int64(options.chunkBytes)
        var position = offset
        var fromRAM = 0
        var lastIndex = 0
        while position < end {
            let index = Int(position / chunkSize)
            lastIndex = index
            let chunkStart = Int64(index) * chunkSize
            let outcome = obtain(handle.file, handle.id, handle.version, handle.path, index: index, demand: true)
            guard case .success(let (chunk, wasCached)) = outcome else {
                if case .failure(let code) = outcome { return -code.value }
                return -EIO
            }
            let within = Int(position - chunkStart)
            // A short chunk means the file shrank while open: end the read there.
            guard within < chunk.rawCount else { break }
            let take = min(chunk.rawCount - within, Int(end - position))
            guard chunk.copy(from: within, count: take, into: buffer + Int(position - offset)) else { return -EIO }
            if wasCached { fromRAM += take }
            position += Int64(take)
        }
        if fromRAM > 0 { pool.countBytesFromRAM(fromRAM) }
        if handle.shouldReadAhead(from: lastIndex) { scheduleReadAhead(handle, after: lastIndex) }
        return Int32(position - offset)
    }

    // MARK: - Chunks

    /// A chunk from the pool, or read from the source (by this thread, or by
    /// another one already reading it). `wasCached` is false when this call read it.
    /// Prefetch (`demand` false) returns nil for chunks present or being read.
    private func obtain(
        _ file: SourceDescriptor, _ id: FileID, _ version: FileVersion, _ path: String, index: Int, demand: Bool
    ) -> Result<(StoredChunk, wasCached: Bool), Errno32> {
        let key = ChunkKey(file: id, index: index)
        while true {
            switch pool.acquire(key, version: version, demand: demand) {
            case .hit(let chunk):
                return .success((chunk, true))
            case .loading(let fill):
                guard demand else { return .failure(Errno32(EALREADY)) }
                if let chunk = pool.wait(for: fill) { return .success((chunk, true)) }
                continue  // that reader failed: try ourselves
            case .mustFill(let fill):
                return fillChunk(fill, file: file, id: id, version: version, path: path, demand: demand)
                    .map { ($0, false) }
            }
        }
    }

    private func fillChunk(
        _ fill: ChunkPool.Fill, file: SourceDescriptor, id: FileID, version: FileVersion, path: String, demand: Bool
    ) -> Result<StoredChunk, Errno32> {
        let chunkSize = Int64(options.chunkBytes)
        let start = Int64(fill.key.index) * chunkSize
        let length = Int(max(0, min(chunkSize, version.size - start)))
        let buffer = malloc(max(length, 1))!
        // Ask for the whole chunk at once: on a share this sends the kernel's
        // readahead requests for it in parallel instead of one window at a time.
        readahead.willNeed(fd: file.fd, offset: start, length: Int64(length))
        var done = 0
        while done < length {
            let n = pread(file.fd, buffer + done, length - done, off_t(start + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                free(buffer)
                pool.abandon(fill)
                return .failure(Errno32(code))
            }
            if n == 0 { break }
            done += n
        }
        // The source may have changed while we read: then these bytes are not the
        // version the key promises. Record the new version (dropping old chunks);
        // complete() will not store this chunk, but the reader still gets what the
        // source holds now, as a direct read would.
        var st = stat()
        if fstat(file.fd, &st) == 0, FileVersion(st) != version {
            pool.noteVersion(FileVersion(st), of: id, path: path)
        }
        let chunk: StoredChunk
        if !demand && options.compression != .off
            && ChunkCodec.shouldCompress(buffer, count: done, mode: options.compression)
        {
            // Prefetch runs in the background: compress before storing.
            chunk = ChunkCodec.compress(buffer, count: done)
            free(buffer)
        } else if let store = poolStore(), let poolFile = store.file(for: id, version: version),
            let stored = poolFile.store(index: fill.key.index, offset: start, bytes: buffer, count: done)
        {
            // Raw chunks go to the file a passthrough open can hand the kernel.
            chunk = stored
            free(buffer)
        } else {
            chunk = ChunkCodec.adopt(buffer, count: done)
        }
        pool.complete(fill, with: chunk, sourceBytes: done, prefetched: !demand)
        if demand && options.compression != .off {
            // A reader is waiting: store raw now, compress on a prefetch thread.
            prefetcher.enqueue(.compress(fill.key))
        }
        return .success(chunk)
    }

    // MARK: - Prefetch

    private func chunkCount(_ size: Int64) -> Int {
        Int((size + Int64(options.chunkBytes) - 1) / Int64(options.chunkBytes))
    }

    /// Queues each missing chunk of the next `readAheadChunks` as its own job, so
    /// the prefetch threads fetch them in parallel ahead of the reader: on a
    /// share whose requests each wait for a round trip, throughput grows with
    /// the chunks in flight.
    private func scheduleReadAhead(_ handle: SourceFileHandle, after index: Int) {
        guard options.readAheadChunks > 0 else { return }
        let lower = index + 1
        let upper = min(chunkCount(handle.version.size), lower + options.readAheadChunks)
        guard lower < upper else { return }
        for chunk in handle.claimReadAhead(lower, upper)
        where !pool.isPresentOrLoading(ChunkKey(file: handle.id, index: chunk)) {
            prefetcher.enqueue(.readAhead(handle, .init(lower: chunk, upper: chunk + 1), handle.stream))
        }
    }

    /// Queues the next `prefetchFiles` regular files after `relative` in its
    /// directory, superseding (cancelling) what an earlier open there queued.
    private func scheduleSiblings(of relative: String) {
        let directory = relative.contains("/") ? Path.directory(of: relative) : "."
        let name = Path.lastComponent(of: relative)
        let names = entryNames(directory == "." ? "/" : "/" + directory).sorted()
        guard let position = names.firstIndex(of: name) else { return }
        var picked: [String] = []
        for candidate in names[(position + 1)...] where picked.count < options.prefetchFiles {
            let candidatePath = directory == "." ? candidate : directory + "/" + candidate
            var st = stat()
            guard statBeneath(candidatePath, &st) == 0,
                st.st_mode & S_IFMT == S_IFREG, st.st_size > 0
            else { continue }
            picked.append(candidatePath)
        }
        let token = CancelToken()
        let previous: CancelToken? = streams.withLock { streams in
            defer { streams.siblings[directory] = token }
            return streams.siblings[directory]
        }
        previous?.cancel()
        guard !picked.isEmpty else { return }
        let budget = Prefetcher.SiblingBudget(Int64(options.poolBytes / 2))
        for path in picked {
            prefetcher.enqueue(.sibling(path: path, token, budget: budget))
        }
    }

    private func perform(_ job: Prefetcher.Job) {
        switch job {
        case .compress(let key):
            guard let raw = pool.peek(key), !raw.isCompressed else { return }
            let mode = options.compression
            let compressed = raw.withRawBytes { bytes -> StoredChunk? in
                guard ChunkCodec.shouldCompress(bytes, count: raw.rawCount, mode: mode) else { return nil }
                return ChunkCodec.compress(bytes, count: raw.rawCount)
            }
            if let compressed = compressed ?? nil, compressed.isCompressed {
                pool.replace(key, old: raw, with: compressed)
            }
        case .readAhead(let handle, let range, let token):
            for index in range.lower..<range.upper {
                if token.isCancelled {
                    prefetcher.noteCancelled()
                    return
                }
                _ = obtain(handle.file, handle.id, handle.version, handle.path, index: index, demand: false)
            }
        case .sibling(let path, let token, let budget):
            guard !token.isCancelled else {
                prefetcher.noteCancelled()
                return
            }
            let fd = openBeneath(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            guard fd >= 0 else { return }
            let file = SourceDescriptor(fd)
            var st = stat()
            guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return }
            let id = FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            let version = FileVersion(st)
            pool.noteVersion(version, of: id, path: "/" + path)
            for index in 0..<chunkCount(version.size) {
                if token.isCancelled {
                    prefetcher.noteCancelled()
                    return
                }
                let key = ChunkKey(file: id, index: index)
                if pool.isPresentOrLoading(key) { continue }
                guard budget.take(options.chunkBytes) else { return }
                _ = obtain(file, id, version, "/" + path, index: index, demand: false)
            }
        }
    }
}

/// A descriptor of a source file, closed when the last handle or job using it ends.
final class SourceDescriptor: Sendable {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}

/// A positive errno carried in a Result.
struct Errno32: Error, Sendable {
    var value: Int32
    init(_ value: Int32) { self.value = value }
}
