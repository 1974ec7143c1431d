import CCachectlFuse
import CFuse3
import Glibc

/// The libfuse high-level operations table: C-convention callbacks that find the
/// ``SourceMirror`` in the request context and translate to and from C. libfuse
/// calls them on its own worker threads.
enum FuseOperations {
    static func mirror() -> SourceMirror {
        Unmanaged<SourceMirror>.fromOpaque(cachectl_fuse_private_data()).takeUnretainedValue()
    }

    static func handle(_ fi: UnsafeMutablePointer<fuse_file_info>?) -> SourceFileHandle? {
        guard let fi, fi.pointee.fh != 0, let raw = UnsafeRawPointer(bitPattern: UInt(fi.pointee.fh)) else {
            return nil
        }
        return Unmanaged<SourceFileHandle>.fromOpaque(raw).takeUnretainedValue()
    }

    static func string(_ path: UnsafePointer<CChar>?) -> String {
        path.map { String(cString: $0) } ?? "/"
    }

    /// Largest read request (the kernel also caps it at max_pages): large enough
    /// for 1 MiB sequential reads of model files in one request.
    static let maxRead = 1 << 20

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
                // Ask for FUSE passthrough in the INIT reply (amended by the hook
                // MirrorMount installed; see CCachectlFuse).
                let mirror = FuseOperations.mirror()
                if mirror.options.passthrough, let session = mirror.session {
                    cachectl_fuse_want_passthrough(session)
                }
                // The kernel enforces the source's POSIX ACLs (fetched with getxattr
                // below) together with the mode bits, as the caller, under
                // default_permissions: an ACL that denies a user in the source
                // denies them in the mirror too.
                if conn.pointee.capable & UInt32(FUSE_CAP_POSIX_ACL) != 0 {
                    conn.pointee.want |= UInt32(FUSE_CAP_POSIX_ACL)
                }
                // Let the kernel keep many readahead requests in flight to our threads.
                // Must repeat the max_read mount option, or libfuse refuses the session.
                conn.pointee.max_read = UInt32(FuseOperations.maxRead)
                conn.pointee.max_background = 64
                conn.pointee.congestion_threshold = 48
            }
            return cachectl_fuse_private_data()
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
        ops.getxattr = { path, name, value, size in
            guard let name else { return -EINVAL }
            return FuseOperations.mirror().getxattr(
                FuseOperations.string(path), name: String(cString: name), value, size)
        }
        ops.listxattr = { _, _, _ in 0 }
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
                // Every chunk is in a pool file: the kernel reads that file itself.
                if handle.backingID > 0 { cachectl_fuse_open_passthrough(fi.pointee.fh, handle.backingID) }
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
