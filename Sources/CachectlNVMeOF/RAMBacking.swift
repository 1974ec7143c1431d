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
        guard parts.count == 2, parts[1].hasPrefix("ram-"), parts[1].hasSuffix(".img"),
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
            try log.perform("mount tmpfs (\(ByteSize.format(size))) on \(directory)", revert: { umount2(directory, Int32(MNT_DETACH)) }) {
                _ = try sys("mount tmpfs on", directory) {
                    mount("cachectl-nvmet", directory, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "size=\(size),mode=0700,nr_inodes=16")
                }
            }
        }
        var st = stat()
        if log.check && !Configfs.exists(file) || stat(file, &st) != 0 {
            try log.perform("create \(file) (\(ByteSize.format(size)), sparse)", revert: { unlink(file) }) {
                let handle = try OpenFile(file, flags: O_RDWR | O_CREAT | O_EXCL, mode: 0o600)
                _ = try sys("ftruncate", file) { ftruncate(handle.fd, off_t(size)) }
            }
        } else if UInt64(st.st_size) != size {
            throw SystemError.failed("backing file", path: file, hint: "it has \(st.st_size) bytes, not \(size); unexport first")
        }
    }

    /// Unmounts the tmpfs (freeing its memory) and removes the directory.
    func release(roots: KernelRoots, log: ChangeLog) throws {
        if Self.isTmpfsMount(directory, roots: roots) {
            try log.perform("unmount \(directory) (frees \(ByteSize.format(residentBytes() ?? 0)))") {
                _ = try sys("umount", directory, hint: "something still has the backing file open") { umount2(directory, 0) }
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
                if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw SystemError("mkdir", path: dir, errno: errno) }
            }
        }
    }

    /// Whether a tmpfs is mounted exactly at `path` (the last mount there wins).
    static func isTmpfsMount(_ path: String, roots: KernelRoots) -> Bool {
        guard let text = try? AtomicFile.readText(roots.proc + "/self/mountinfo") else { return false }
        var type: String?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash >= 5, fields.count > dash + 1 else { continue }
            if unescapeMountField(fields[4]) == path { type = String(fields[dash + 1]) }
        }
        return type == "tmpfs"
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
func unescapeMountField(_ field: Substring) -> String {
    var bytes: [UInt8] = []
    let utf8 = Array(field.utf8)
    var i = 0
    while i < utf8.count {
        if utf8[i] == 0x5c, i + 3 < utf8.count, let v = UInt8(String(decoding: utf8[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
            bytes.append(v)
            i += 4
        } else {
            bytes.append(utf8[i])
            i += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
