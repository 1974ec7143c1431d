import CCachectlFuse
import CFuse3
import Glibc

/// The libfuse high-level operations table: C-convention callbacks that find the
/// ``SourceMirror`` in the request context and translate to and from C. libfuse
/// calls them on its own worker threads.
enum FuseOperations {
    static func mirror() -> SourceMirror {
        Unmanaged<SourceMirror>.fromOpaque(fuse_get_context()!.pointee.private_data).takeUnretainedValue()
    }

    static func handle(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> SourceFileHandle? {
        guard let fi, fi.pointee.fh != 0, let raw = UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh)) else { return nil }
        return Unmanaged<SourceFileHandle>.fromOpaque(raw).takeUnretainedValue()
    }

    static func string(_ path: UnsafePointer<CChar>?) -> String {
        path.map { String(cString: $0) } ?? "/"
    }

    /// Largest read request (the kernel also caps it at max_pages, 256 pages).
    ///
    /// 1 MiB when libfuse can splice a reply that large, else the largest power
    /// of two it can splice. libfuse splices a reply only when its per-thread
    /// pipe holds the data plus a few pages of header; a pipe may not grow past
    /// /proc/sys/fs/pipe-max-size (1 MiB by default) without CAP_SYS_RESOURCE,
    /// which containers often drop. Too large a request would silently fall back
    /// to preading the chunk into a buffer and copying it (measured: no gain
    /// over plain read), so 512 KiB spliced requests beat 1 MiB copied ones.
    static let maxRead: Int = {
        let largest = 1 << 20
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return largest }
        defer {
            close(fds[0])
            close(fds[1])
        }
        let setPipeSize: Int32 = 1031  // F_SETPIPE_SZ (fcntl.h; not imported by Glibc)
        let header = 4 * 4096  // libfuse's estimate: (iovecs + buffers + 1) pages
        var size = largest
        while size > 128 << 10, fcntl(fds[0], setPipeSize, Int32(size + header)) < 0 { size /= 2 }
        return size
    }()

    /// Replaces the calling thread's pinned chunk (see cachectl_fuse_swap_pin).
    static func pin(_ chunk: StoredChunk?) {
        let new = chunk.map { Unmanaged.passRetained($0).toOpaque() }
        let old = cachectl_fuse_swap_pin(new) { pinned in
            if let pinned { Unmanaged<StoredChunk>.fromOpaque(pinned).release() }
        }
        if let old { Unmanaged<StoredChunk>.fromOpaque(old).release() }
    }

    static func table() -> fuse_operations {
        var ops = fuse_operations()
        ops.`init` = { conn, cfg in
            if let cfg {
                let mirror = FuseOperations.mirror()
                let timeout = mirror.options.attributeTimeout
                cfg.pointee.entry_timeout = timeout
                cfg.pointee.attr_timeout = timeout
                cfg.pointee.negative_timeout = timeout
                cfg.pointee.use_ino = 1
                cfg.pointee.nullpath_ok = 1
                // keep_cache is decided per open (dropped when the source changed).
                cfg.pointee.kernel_cache = 0
                cfg.pointee.auto_cache = 0
            }
            if let conn {
                // Let the kernel keep many readahead requests in flight to our threads.
                // Must repeat the max_read mount option, or libfuse refuses the session.
                conn.pointee.max_read = UInt32(FuseOperations.maxRead)
                conn.pointee.max_background = 64
                conn.pointee.congestion_threshold = 48
                // Replies from a chunk's memfd splice its pages into /dev/fuse
                // (one kernel copy into the page cache, none in user space).
                // Not SPLICE_MOVE: moving would take the pages out of the pool.
                let splice = UInt32(FUSE_CAP_SPLICE_WRITE)
                if conn.pointee.capable & splice != 0 { conn.pointee.want |= splice }
            }
            return fuse_get_context()!.pointee.private_data
        }
        ops.getattr = { path, st, fi in
            guard let st else { return -EINVAL }
            // With nullpath_ok, an open file's attributes come with its handle and
            // no path: stat the source descriptor (never "/", which would turn the
            // file into a directory and make the kernel mark the inode bad: EIO).
            if let handle = FuseOperations.handle(fi) {
                return fstat(handle.file.fd, st) == 0 ? 0 : -errno
            }
            guard let path else { return -ENOENT }
            return FuseOperations.mirror().getattr(String(cString: path), st)
        }
        ops.readlink = { path, buffer, size in
            guard let buffer else { return -EINVAL }
            return FuseOperations.mirror().readlink(FuseOperations.string(path), buffer, size)
        }
        // opendir keeps the directory's descriptor in fh: with nullpath_ok libfuse
        // may pass no path to readdir.
        ops.opendir = { path, fi in
            guard let fi else { return -EINVAL }
            let fd = FuseOperations.mirror().openDirectory(FuseOperations.string(path))
            if fd < 0 { return fd }
            fi.pointee.fh = UInt64(fd)
            return 0
        }
        ops.readdir = { _, buffer, filler, _, fi, _ in
            guard let filler, let fi else { return -EINVAL }
            return FuseOperations.mirror().readdir(fd: Int32(truncatingIfNeeded: fi.pointee.fh)) { name in
                filler(buffer, name, nil, 0, fuse_fill_dir_flags(rawValue: 0)) == 0
            }
        }
        ops.releasedir = { _, fi in
            if let fi { close(Int32(truncatingIfNeeded: fi.pointee.fh)) }
            return 0
        }
        ops.statfs = { _, out in
            guard let out else { return -EINVAL }
            return FuseOperations.mirror().statfs(out)
        }
        ops.open = { path, fi in
            guard let fi else { return -EINVAL }
            switch FuseOperations.mirror().open(FuseOperations.string(path), flags: fi.pointee.flags) {
            case .failure(let code):
                return -code.value
            case .success(let (handle, keepCache)):
                fi.pointee.fh = UInt64(UInt(bitPattern: Unmanaged.passRetained(handle).toOpaque()))
                fi.pointee.keep_cache = keepCache ? 1 : 0
                return 0
            }
        }
        ops.read_buf = { _, bufp, size, offset, fi in
            guard let bufp, let handle = FuseOperations.handle(fi) else { return -EBADF }
            // This thread's previous reply has been sent: its chunk may go.
            FuseOperations.pin(nil)
            let mirror = FuseOperations.mirror()
            guard let vector = malloc(MemoryLayout<fuse_bufvec>.size)?.bindMemory(to: fuse_bufvec.self, capacity: 1)
            else { return -ENOMEM }
            vector.initialize(to: fuse_bufvec())
            vector.pointee.count = 1
            bufp.pointee = vector  // libfuse frees it (and a memory buffer in it)
            switch mirror.spliceReply(handle, size: size, offset: Int64(offset)) {
            case .spliced(let chunk, let fd, let within, let count):
                vector.pointee.buf.size = count
                vector.pointee.buf.flags = fuse_buf_flags(FUSE_BUF_IS_FD.rawValue | FUSE_BUF_FD_SEEK.rawValue)
                vector.pointee.buf.fd = fd
                vector.pointee.buf.pos = off_t(within)
                // libfuse splices after we return: keep the chunk (and its
                // descriptor) alive until this thread's next request.
                FuseOperations.pin(chunk)
                return 0
            case .copy:
                guard let memory = malloc(max(size, 1)) else { return -ENOMEM }
                vector.pointee.buf.mem = memory
                let n = mirror.read(handle, into: memory, size: size, offset: Int64(offset))
                if n < 0 { return n }
                vector.pointee.buf.size = Int(n)
                return 0
            }
        }
        ops.read = { _, buffer, size, offset, fi in
            guard let buffer, let handle = FuseOperations.handle(fi) else { return -EBADF }
            return FuseOperations.mirror().read(handle, into: buffer, size: size, offset: Int64(offset))
        }
        ops.release = { _, fi in
            guard let fi, let handle = FuseOperations.handle(fi) else { return 0 }
            FuseOperations.mirror().release(handle)
            Unmanaged<SourceFileHandle>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh))!).release()
            fi.pointee.fh = 0
            return 0
        }
        // The mount is read-only (-o ro) so the kernel refuses writes itself;
        // these answer EROFS should a request get here anyway.
        ops.write = { _, _, _, _, _ in -EROFS }
        ops.create = { _, _, _ in -EROFS }
        ops.mknod = { _, _, _ in -EROFS }
        ops.mkdir = { _, _ in -EROFS }
        ops.unlink = { _ in -EROFS }
        ops.rmdir = { _ in -EROFS }
        ops.symlink = { _, _ in -EROFS }
        ops.rename = { _, _, _ in -EROFS }
        ops.link = { _, _ in -EROFS }
        ops.chmod = { _, _, _ in -EROFS }
        ops.chown = { _, _, _, _ in -EROFS }
        ops.truncate = { _, _, _ in -EROFS }
        ops.utimens = { _, _, _ in -EROFS }
        ops.setxattr = { _, _, _, _, _ in -EROFS }
        ops.removexattr = { _, _ in -EROFS }
        return ops
    }
}
