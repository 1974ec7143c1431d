import CCachectlFuse
import Glibc
import Synchronization

/// Where raw chunks live when the kernel offers FUSE passthrough (Linux 6.9+,
/// CAP_SYS_ADMIN): one unnamed file per source file version, in a tmpfs that
/// only the daemon can reach (created with fsopen/fsmount and never attached to
/// the mount tree), mounted `huge=within_size` so its files get 2 MiB folios.
///
/// A file whose chunks are all in its pool file can then be opened in
/// passthrough mode: the kernel reads (and maps) the pool file itself, so
/// reads through the mount never reach the daemon and cost what a tmpfs read
/// costs, instead of going through the FUSE inode's 4 KiB page-cache folios.
/// Chunks still count against `--pool` and are evicted like heap chunks: an
/// evicted chunk's range is punched out of its file.
final class PoolStore: @unchecked Sendable {
    /// Descriptor of the private tmpfs.
    let mountFD: Int32
    /// The session's /dev/fuse descriptor (backing-id ioctls).
    let connection: FuseConnection
    private let files = Mutex<[FileID: WeakPoolFile]>([:])

    private struct WeakPoolFile {
        weak var file: PoolFile?
    }

    /// A store when this process may use passthrough on the session `devFD`:
    /// the private tmpfs can be created and the kernel accepts a backing file.
    /// Otherwise the reason (an errno name and what it means), and the mirror
    /// keeps chunks on the heap and answers every read itself.
    static func probe(_ connection: FuseConnection) -> Result<PoolStore, PassthroughUnavailable> {
        guard let devFD = connection.descriptor else { return .failure(.init(errno: ENOTCONN, step: "FUSE session")) }
        let mountFD = cachectl_tmpfs_detached("within_size")
        guard mountFD >= 0 else { return .failure(.init(errno: -mountFD, step: "private tmpfs (fsopen)")) }
        let probe = cachectl_tmpfs_file(mountFD, 4096)
        guard probe >= 0 else {
            close(mountFD)
            return .failure(.init(errno: -probe, step: "pool file"))
        }
        defer { close(probe) }
        let id = cachectl_fuse_backing_open(devFD, probe)
        guard id > 0 else {
            close(mountFD)
            return .failure(.init(errno: -id, step: "FUSE_DEV_IOC_BACKING_OPEN"))
        }
        _ = cachectl_fuse_backing_close(devFD, id)
        return .success(PoolStore(mountFD: mountFD, connection: connection))
    }

    private init(mountFD: Int32, connection: FuseConnection) {
        self.mountFD = mountFD
        self.connection = connection
    }

    deinit { close(mountFD) }

    /// The pool file of this version of a source file, created (sized, empty)
    /// on first use; nil when the tmpfs refuses one. A file of an older version
    /// lives on while chunks or passthrough opens still use it.
    func file(for id: FileID, version: FileVersion) -> PoolFile? {
        guard version.size > 0 else { return nil }
        return files.withLock { files in
            if let existing = files[id]?.file, existing.version == version { return existing }
            let fd = cachectl_tmpfs_file(mountFD, version.size)
            guard fd >= 0 else { return nil }
            let file = PoolFile(fd: fd, connection: connection, version: version)
            files[id] = WeakPoolFile(file: file)
            if files.count > 4096 { files = files.filter { $0.value.file != nil } }
            return file
        }
    }
}

/// Why passthrough is off (for stats and the README's evidence).
struct PassthroughUnavailable: Error, Sendable, Equatable {
    var errno: Int32
    var step: String
    var description: String {
        let name = String(cString: strerror(errno))
        return "\(step): \(name)"
    }
}

/// One source file version's chunks in the private tmpfs, at their file offsets.
/// Each chunk range is written once by the chunk that occupies it and punched
/// out when that chunk is freed; a range already occupied is never written, so
/// a passthrough reader (which keeps its file's chunks alive) never sees one
/// change or vanish under it.
final class PoolFile: @unchecked Sendable {
    let fd: Int32
    let connection: FuseConnection
    let version: FileVersion
    private struct State {
        var occupied: Set<Int> = []
        var backingID: Int32 = 0
    }
    private let state = Mutex(State())

    init(fd: Int32, connection: FuseConnection, version: FileVersion) {
        self.fd = fd
        self.connection = connection
        self.version = version
    }

    deinit {
        let id = state.withLock { $0.backingID }
        if id > 0 { connection.closeBacking(id) }
        close(fd)
    }

    /// Copies `count` bytes into chunk `index`'s range (starting at `offset`)
    /// and returns the chunk that owns it, or nil when the range is occupied or
    /// the tmpfs refuses the write (the caller keeps the chunk on the heap).
    func store(index: Int, offset: Int64, bytes: UnsafeRawPointer, count: Int) -> StoredChunk? {
        let claimed = state.withLock { $0.occupied.insert(index).inserted }
        guard claimed else { return nil }
        var done = 0
        while done < count {
            let n = pwrite(fd, bytes + done, count - done, off_t(offset + Int64(done)))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                release(index: index, offset: offset, count: count)
                return nil
            }
            done += n
        }
        return StoredChunk(poolFile: self, index: index, offset: offset, count: count)
    }

    /// Frees chunk `index`'s range (its chunk was freed).
    func release(index: Int, offset: Int64, count: Int) {
        state.withLock { state in
            // Punched under the lock, so no new owner can write the range first.
            _ = cachectl_punch_hole(fd, offset, Int64(count))
            state.occupied.remove(index)
        }
    }

    /// The backing id of this file on the FUSE connection (opened once), or nil.
    func backingID() -> Int32? {
        state.withLock { state in
            if state.backingID == 0 {
                guard let id = connection.openBacking(fd) else { return nil }
                state.backingID = id
            }
            return state.backingID
        }
    }
}

/// The session's /dev/fuse descriptor, forgotten at unmount so that a pool
/// file freed later never issues an ioctl on a descriptor number reused since.
final class FuseConnection: Sendable {
    private let fd = Mutex<Int32>(-1)

    var descriptor: Int32? {
        let value = fd.withLock { $0 }
        return value >= 0 ? value : nil
    }

    func attach(_ descriptor: Int32) { fd.withLock { $0 = descriptor } }
    func detach() { fd.withLock { $0 = -1 } }

    /// A backing id for the open file `file`, or nil.
    func openBacking(_ file: Int32) -> Int32? {
        fd.withLock { fd in
            guard fd >= 0 else { return nil }
            let id = cachectl_fuse_backing_open(fd, file)
            return id > 0 ? id : nil
        }
    }

    func closeBacking(_ id: Int32) {
        fd.withLock { fd in
            if fd >= 0 { _ = cachectl_fuse_backing_close(fd, id) }
        }
    }
}
