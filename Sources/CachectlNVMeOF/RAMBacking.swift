import CachectlMount
import CachectlSystem
import Glibc

/// The memory behind an exported namespace: a sparse file on a tmpfs of its own,
/// `BACKING/NAME/ram-SIZE.img`.
///
/// Why not brd: `modprobe brd rd_nr=N rd_size=K` fixes the number and the size
/// of every RAM disk at module load, so one export of another size means
/// unloading brd, which no export may be using. A tmpfs per export is sized
/// on its own, allocates pages only when written, gives them back when the host
/// discards (nvmet's file backend punches holes), and goes away with an umount.
/// nvmet must open it with `buffered_io` (tmpfs on 6.1 refuses O_DIRECT); the
/// "page cache" it reads through is the tmpfs memory itself, so nothing is held twice.
///
/// nvmetcli's JSON has no field for a backing size, so the file name carries it:
/// `restore` after a reboot can make the RAM namespace again from the path alone.
public struct RAMBacking: Sendable, Equatable {
    public let directory: String
    public let size: UInt64

    public init(backingRoot: String, name: String, size: UInt64) {
        directory = backingRoot + "/" + name
        self.size = size
    }

    public var file: String { directory + "/ram-\(size).img" }

    /// The backing a namespace path names, when it is one cachectl made.
    public static func parse(_ path: String, backingRoot: String) -> RAMBacking? {
        guard path.hasPrefix(backingRoot + "/") else { return nil }
        let parts = path.dropFirst(backingRoot.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0] != ".", parts[0] != "..",
            parts[1].hasPrefix("ram-"), parts[1].hasSuffix(".img"),
            let size = UInt64(parts[1].dropFirst(4).dropLast(4)), size > 0
        else { return nil }
        return RAMBacking(backingRoot: backingRoot, name: String(parts[0]), size: size)
    }

    /// Mounted and the file there with the right size.
    func isReady(roots: KernelRoots) -> Bool {
        var st = stat()
        return Self.isTmpfsMount(directory, roots: roots) && stat(file, &st) == 0 && UInt64(st.st_size) == size
    }

    /// Bytes of RAM the file holds now (allocated blocks).
    func residentBytes() -> UInt64? {
        var st = stat()
        guard stat(file, &st) == 0 else { return nil }
        return UInt64(st.st_blocks) * 512
    }

    /// Mounts the tmpfs and makes the file, each only when missing.
    func ensure(roots: KernelRoots, log: ChangeLog) throws {
        if !Self.isTmpfsMount(directory, roots: roots) {
            if !Configfs.isDirectory(directory) {
                try makeDirectories(directory, log: log)
            }
            // The rollback unmounts this mount only: the one with the ID it got, if it
            // is still the top mount there (never a tier or anything mounted since).
            let mounted = MountIDBox()
            let directory = directory
            try log.perform(
                "mount tmpfs (\(ByteSize.format(size))) on \(directory)",
                revertIfOwned: {
                    guard let id = mounted.id, let entry = try? MountTable.entry(at: directory, roots: roots),
                        entry.id == id,
                        entry.source == Self.mountSource
                    else { return false }
                    return umount2(directory, Int32(MNT_DETACH)) == 0
                }
            ) {
                _ = try sys("mount tmpfs on", directory) {
                    mount(
                        Self.mountSource, directory, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC),
                        "size=\(size),mode=0700,nr_inodes=16")
                }
                mounted.id = (try? MountTable.entry(at: directory, roots: roots))?.id
            }
        }
        var st = stat()
        if log.check && !Configfs.exists(file) || stat(file, &st) != 0 {
            try log.perform("create \(file) (\(ByteSize.format(size)), sparse)", revert: { unlink(file) }) {
                let handle = try OpenFile(file, flags: O_RDWR | O_CREAT | O_EXCL, mode: 0o600)
                _ = try sys("ftruncate", file) { ftruncate(handle.fd, off_t(size)) }
            }
        } else if UInt64(st.st_size) != size {
            throw CachectlError.failed(
                "backing file", path: file, hint: "it has \(st.st_size) bytes, not \(size); unexport first")
        }
    }

    /// Unmounts the tmpfs (freeing its memory) and removes the directory.
    func release(roots: KernelRoots, log: ChangeLog) throws {
        if Self.isTmpfsMount(directory, roots: roots) {
            try log.perform("unmount \(directory) (frees \(ByteSize.format(residentBytes() ?? 0)))") {
                _ = try sys("umount", directory, hint: "something still has the backing file open") {
                    umount2(directory, 0)
                }
            }
        }
        if Configfs.isDirectory(directory) {
            try log.perform("remove \(directory)") { _ = try sys("rmdir", directory) { rmdir(directory) } }
        }
    }

    private func makeDirectories(_ path: String, log: ChangeLog) throws {
        var missing: [String] = []
        var current = path
        while !Configfs.isDirectory(current) && current != "/" && !current.isEmpty {
            missing.append(current)
            current = Path.directory(of: current)
        }
        for dir in missing.reversed() {
            try log.perform("create \(dir)", revert: { rmdir(dir) }) {
                if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw CachectlError("mkdir", path: dir, errno: errno) }
            }
        }
    }

    /// The source name of the tmpfs under each backing file.
    static let mountSource = "cachectl-nvmet"

    /// Whether a tmpfs is mounted exactly at `path` (the last mount there wins).
    static func isTmpfsMount(_ path: String, roots: KernelRoots) -> Bool {
        (try? MountTable.entry(at: path, roots: roots))?.fstype == "tmpfs"
    }
}

/// The mount ID a revert closure needs, set after the mount succeeded.
private final class MountIDBox {
    var id: Int?
}
