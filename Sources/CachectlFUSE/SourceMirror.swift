import CCachectlShims
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
    private let readAheadFrom = Mutex(-1)

    init(file: SourceDescriptor, id: FileID, version: FileVersion, path: String, stream: CancelToken) {
        self.file = file
        self.id = id
        self.version = version
        self.path = path
        self.stream = stream
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
    let pool: ChunkPool
    let prefetcher = Prefetcher()
    /// Descriptor of the source directory: every lookup is relative to it,
    /// so the source can be renamed or over-mounted without confusing the mirror.
    let sourceFD: Int32
    /// Open files (handles per file, and the token that cancels their read-ahead)
    /// and the sibling prefetch of each directory.
    private struct Streams {
        var files: [FileID: (handles: Int, token: CancelToken)] = [:]
        var siblings: [String: CancelToken] = [:]
    }
    private let streams = Mutex(Streams())

    init(options: MirrorOptions) throws(SystemError) {
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
        prefetcher.stop()
        streams.withLock { streams in
            for (_, stream) in streams.files { stream.token.cancel() }
            for (_, token) in streams.siblings { token.cancel() }
        }
    }

    deinit { close(sourceFD) }

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
        _ = readdir(fd: fd) { names.append(String(cString: $0)); return true }
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
        let token: CancelToken = streams.withLock { streams in
            if let stream = streams.files[id] {
                streams.files[id] = (stream.handles + 1, stream.token)
                return stream.token
            }
            let token = CancelToken()
            streams.files[id] = (1, token)
            return token
        }
        let handle = SourceFileHandle(file: file, id: id, version: version, path: path, stream: token)
        scheduleReadAhead(handle, after: -1)
        if options.prefetchFiles > 0 { scheduleSiblings(of: relative) }
        return .success((handle, keepCache: !changed))
    }

    func release(_ handle: SourceFileHandle) {
        streams.withLock { streams in
            guard let stream = streams.files[handle.id] else { return }
            if stream.handles <= 1 {
                stream.token.cancel()
                streams.files[handle.id] = nil
            } else {
                streams.files[handle.id] = (stream.handles - 1, stream.token)
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
            chunk.copy(from: within, count: take, into: buffer + Int(position - offset))
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

    private func scheduleReadAhead(_ handle: SourceFileHandle, after index: Int) {
        guard options.readAheadChunks > 0 else { return }
        let lower = index + 1
        let upper = min(chunkCount(handle.version.size), lower + options.readAheadChunks)
        guard lower < upper else { return }
        // Skip the work when everything ahead is already there (warm reads).
        let missing = (lower..<upper).contains {
            !pool.isPresentOrLoading(ChunkKey(file: handle.id, index: $0))
        }
        guard missing else { return }
        prefetcher.enqueue(.readAhead(handle, .init(lower: lower, upper: upper), handle.stream))
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
            guard ChunkCodec.shouldCompress(raw.base, count: raw.rawCount, mode: options.compression) else { return }
            let compressed = ChunkCodec.compress(raw.base, count: raw.rawCount)
            if compressed.isCompressed { pool.replace(key, old: raw, with: compressed) }
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
