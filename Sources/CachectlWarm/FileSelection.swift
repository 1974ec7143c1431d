import CachectlSystem
import Glibc

/// A regular file chosen for warming, after following symlinks.
public struct SelectedFile: Sendable, Equatable {
    /// The path as the user named it or as found under a named directory.
    public var path: String
    public var size: UInt64
    public var device: UInt64
    public var inode: UInt64

    /// The file the path resolves to (ollama blobs are reached through symlinks),
    /// computed on demand: realpath(2) walks every component, too slow to do for each
    /// of 100,000 files that only need to be read.
    public var resolvedPath: String {
        realpath(path, nil).map { pointer -> String in
            defer { free(pointer) }
            return String(cString: pointer)
        } ?? path
    }
}

/// A path that could not be selected, and why; reported per file.
public struct FileProblem: Sendable, Equatable, Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Turns what the user typed into the list of files to work on: files, directories
/// (recursive, sorted), multi-shard GGUF names (one shard names the whole set), and
/// symlinks followed to regular files. Each file appears once, however many paths
/// reach it (same device and inode).
public struct FileSelection: Sendable {
    public var files: [SelectedFile] = []
    /// Paths named on the command line that cannot be used (missing, FIFO, loop, ...).
    public var problems: [FileProblem] = []
    /// Entries skipped inside directories (special files, broken links): not errors.
    public var skipped: [FileProblem] = []
    /// Shards of a named set that do not exist.
    public var missingShards: [String] = []

    public var totalSize: UInt64 { files.reduce(0) { $0 + $1.size } }

    /// - Parameters:
    ///   - include: glob patterns (fnmatch); a file found in a directory is kept only if
    ///     its name or its path relative to that directory matches one. Empty keeps all.
    ///   - exclude: glob patterns; a matching file found in a directory is dropped.
    ///   - expandShards: a `-00001-of-00004.gguf` name selects every shard that exists.
    public init(paths: [String], include: [String] = [], exclude: [String] = [], expandShards: Bool = true) {
        var walker = Walker(include: include, exclude: exclude, expandShards: expandShards, opening: false)
        var files: [SelectedFile] = []
        walker.run(paths) { file, _ in files.append(file) }
        self.init(walker)
        self.files = files
    }

    private init(_ walker: Walker) {
        problems = walker.problems
        skipped = walker.skipped
        missingShards = walker.missingShards
    }

    /// The same selection, streamed: `body` gets each file in selection order as soon as
    /// it is found, and no list of files is kept, so memory does not grow with the
    /// number of files (only the set of device/inode pairs that keeps each file once).
    /// The result holds the problems, skipped entries and missing shards; `files` is empty.
    ///
    /// With `opening`, a regular file found in a directory is opened read-only
    /// (`O_NONBLOCK`: never waits on a FIFO swapped in) relative to its directory and
    /// fstat(2)'ed, instead of stat(2)'ed by path: `body` gets it open, and it is closed
    /// when `body` returns (one descriptor at a time). Files named directly, files that
    /// cannot be opened, and entries reached through symlinks come with nil; callers open
    /// those themselves and report the error as usual.
    public static func forEach(
        paths: [String], include: [String] = [], exclude: [String] = [], expandShards: Bool = true,
        opening: Bool = false, _ body: (SelectedFile, OpenFile?) -> Void
    ) -> FileSelection {
        var walker = Walker(include: include, exclude: exclude, expandShards: expandShards, opening: opening)
        walker.run(paths, body)
        return FileSelection(walker)
    }

    fileprivate struct FileIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "FIFO"
        case S_IFCHR: "character device"
        case S_IFBLK: "block device"
        case S_IFSOCK: "socket"
        case S_IFDIR: "directory"
        default: "special file"
        }
    }

    static func reason(errno code: Int32, path: String) -> String {
        switch code {
        case ENOENT: "no such file (or a symlink to a missing file)"
        case ELOOP: "symlink loop (ELOOP); fix the links"
        case EACCES: "permission denied (EACCES); run as a user who can read it"
        default: "\(Errno.message(code)) (\(Errno.name(code)))"
        }
    }
}

/// The walk behind ``FileSelection``: named paths, then directories depth-first in
/// sorted order.
private struct Walker {
    typealias FileIdentity = FileSelection.FileIdentity
    let include: [String]
    let exclude: [String]
    let expandShards: Bool
    let opening: Bool
    var problems: [FileProblem] = []
    var skipped: [FileProblem] = []
    var missingShards: [String] = []
    /// Files handed out so far (each file once) and directories entered (loops).
    private var seen = Set<FileIdentity>()
    private var visited = Set<FileIdentity>()

    init(include: [String], exclude: [String], expandShards: Bool, opening: Bool) {
        self.include = include
        self.exclude = exclude
        self.expandShards = expandShards
        self.opening = opening
    }

    mutating func run(_ paths: [String], _ body: (SelectedFile, OpenFile?) -> Void) {
        for path in paths { addNamed(path, body) }
    }

    private mutating func addNamed(_ path: String, _ body: (SelectedFile, OpenFile?) -> Void) {
        var st = stat()
        if stat(path, &st) != 0 {
            let code = errno
            problems.append(FileProblem(path: path, reason: FileSelection.reason(errno: code, path: path)))
            return
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            if expandShards, let shard = ShardName(fileName: Path.lastComponent(of: path)), shard.count > 1 {
                let dir = path.contains("/") ? Path.directory(of: path) : "."
                for name in shard.allFileNames {
                    let shardPath = path.contains("/") ? Path.join(dir, name) : name
                    var shardStat = stat()
                    guard stat(shardPath, &shardStat) == 0, shardStat.st_mode & S_IFMT == S_IFREG else {
                        missingShards.append(shardPath)
                        continue
                    }
                    add(shardPath, shardStat, nil, body)
                }
            } else {
                add(path, st, nil, body)
            }
        case S_IFDIR:
            walk(directory: path, relative: "", body)
        default:
            problems.append(
                FileProblem(
                    path: path,
                    reason:
                        "is a \(FileSelection.kind(st.st_mode)), not a regular file; only regular files can be warmed"))
        }
    }

    /// d_type values of <dirent.h>, the same on every Linux architecture.
    private static let typeDirectory: UInt8 = 4
    private static let typeRegular: UInt8 = 8

    private struct Entry {
        var name: String
        var type: UInt8
    }

    /// One directory: its entries sorted by name; subdirectories entered in place.
    /// Entries are stat'ed relative to the open directory (fstatat), not by a path
    /// walked again from the root each time.
    private mutating func walk(directory: String, relative: String, _ body: (SelectedFile, OpenFile?) -> Void) {
        guard let dir = opendir(directory) else {
            let code = errno
            problems.append(FileProblem(path: directory, reason: FileSelection.reason(errno: code, path: directory)))
            return
        }
        defer { closedir(dir) }
        let dfd = dirfd(dir)
        var dirStat = stat()
        guard fstat(dfd, &dirStat) == 0 else { return }
        // A symlink to an ancestor would recurse forever: visit each directory once.
        guard visited.insert(FileIdentity(device: UInt64(dirStat.st_dev), inode: UInt64(dirStat.st_ino))).inserted
        else {
            skipped.append(FileProblem(path: directory, reason: "directory already visited (symlink loop)"))
            return
        }
        var entries: [Entry] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { entries.append(Entry(name: name, type: entry.pointee.d_type)) }
        }
        entries.sort { $0.name < $1.name }
        for entry in entries {
            let full = Path.join(directory, entry.name)
            let rel = relative.isEmpty ? entry.name : relative + "/" + entry.name
            if entry.type == Self.typeDirectory {
                walk(directory: full, relative: rel, body)
                continue
            }
            if entry.type == Self.typeRegular {
                guard passesFilters(name: entry.name, relative: rel) else { continue }
                if opening, let (file, st) = Self.openRegular(dfd, entry.name, path: full) {
                    add(full, st, file, body)
                    continue
                }
            }
            // Symlinks, filesystems that do not fill d_type, and files that could not be
            // opened: stat (following links) decides.
            var st = stat()
            if fstatat(dfd, entry.name, &st, 0) != 0 {
                let code = errno
                skipped.append(FileProblem(path: full, reason: FileSelection.reason(errno: code, path: full)))
                continue
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                walk(directory: full, relative: rel, body)
            case S_IFREG:
                if entry.type != Self.typeRegular && !passesFilters(name: entry.name, relative: rel) { continue }
                add(full, st, nil, body)
            default:
                skipped.append(FileProblem(path: full, reason: "is a \(FileSelection.kind(st.st_mode)); skipped"))
            }
        }
    }

    private func passesFilters(name: String, relative: String) -> Bool {
        if !include.isEmpty && !include.contains(where: { Glob.matches($0, name: name, relativePath: relative) }) {
            return false
        }
        return !exclude.contains(where: { Glob.matches($0, name: name, relativePath: relative) })
    }

    /// openat(2) read-only, non-blocking, then fstat(2): the open file and its status,
    /// or nil when it cannot be opened or is not a regular file (any more).
    private static func openRegular(_ dfd: Int32, _ name: String, path: String) -> (OpenFile, stat)? {
        let fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        let file = OpenFile(adopting: fd, path: path)
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return (file, st)
    }

    private mutating func add(_ path: String, _ st: stat, _ file: OpenFile?, _ body: (SelectedFile, OpenFile?) -> Void)
    {
        let identity = FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        guard seen.insert(identity).inserted else { return }
        body(SelectedFile(path: path, size: UInt64(st.st_size), device: identity.device, inode: identity.inode), file)
    }
}

/// Shell-style globs, as in `--include '*.gguf'`.
public enum Glob {
    /// True when `pattern` matches the file name, or (for patterns with a slash) the
    /// path relative to the directory that was named.
    public static func matches(_ pattern: String, name: String, relativePath: String) -> Bool {
        if pattern.contains("/") { return fnmatch(pattern, relativePath, FNM_PATHNAME) == 0 }
        return fnmatch(pattern, name, 0) == 0
    }
}
