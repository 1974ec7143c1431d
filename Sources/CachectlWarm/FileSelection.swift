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
        var seen = Set<FileIdentity>()
        for path in paths {
            addNamed(path, include: include, exclude: exclude, expandShards: expandShards, seen: &seen)
        }
    }

    private struct FileIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private mutating func addNamed(
        _ path: String, include: [String], exclude: [String], expandShards: Bool, seen: inout Set<FileIdentity>
    ) {
        var st = stat()
        if stat(path, &st) != 0 {
            let code = errno
            problems.append(FileProblem(path: path, reason: Self.reason(errno: code, path: path)))
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
                    add(shardPath, shardStat, seen: &seen)
                }
            } else {
                add(path, st, seen: &seen)
            }
        case S_IFDIR:
            var visited = Set<FileIdentity>()
            walk(directory: path, relative: "", include: include, exclude: exclude, seen: &seen, visited: &visited)
        default:
            problems.append(FileProblem(path: path, reason: "is a \(Self.kind(st.st_mode)), not a regular file; only regular files can be warmed"))
        }
    }

    private mutating func walk(
        directory: String, relative: String, include: [String], exclude: [String],
        seen: inout Set<FileIdentity>, visited: inout Set<FileIdentity>
    ) {
        var dirStat = stat()
        guard stat(directory, &dirStat) == 0 else { return }
        // A symlink to an ancestor would recurse forever: visit each directory once.
        guard visited.insert(FileIdentity(device: UInt64(dirStat.st_dev), inode: UInt64(dirStat.st_ino))).inserted else {
            skipped.append(FileProblem(path: directory, reason: "directory already visited (symlink loop)"))
            return
        }
        let names: [String]
        do {
            names = try Path.entries(of: directory)
        } catch {
            problems.append(FileProblem(path: directory, reason: Self.reason(errno: error.errno ?? EIO, path: directory)))
            return
        }
        for name in names.sorted() {
            let full = Path.join(directory, name)
            let rel = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            if stat(full, &st) != 0 {
                let code = errno
                skipped.append(FileProblem(path: full, reason: Self.reason(errno: code, path: full)))
                continue
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                walk(directory: full, relative: rel, include: include, exclude: exclude, seen: &seen, visited: &visited)
            case S_IFREG:
                if !include.isEmpty && !include.contains(where: { Glob.matches($0, name: name, relativePath: rel) }) { continue }
                if exclude.contains(where: { Glob.matches($0, name: name, relativePath: rel) }) { continue }
                add(full, st, seen: &seen)
            default:
                skipped.append(FileProblem(path: full, reason: "is a \(Self.kind(st.st_mode)); skipped"))
            }
        }
    }

    private mutating func add(_ path: String, _ st: stat, seen: inout Set<FileIdentity>) {
        let identity = FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        guard seen.insert(identity).inserted else { return }
        files.append(SelectedFile(
            path: path, size: UInt64(st.st_size),
            device: identity.device, inode: identity.inode))
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

/// Shell-style globs, as in `--include '*.gguf'`.
public enum Glob {
    /// True when `pattern` matches the file name, or (for patterns with a slash) the
    /// path relative to the directory that was named.
    public static func matches(_ pattern: String, name: String, relativePath: String) -> Bool {
        if pattern.contains("/") { return fnmatch(pattern, relativePath, FNM_PATHNAME) == 0 }
        return fnmatch(pattern, name, 0) == 0
    }
}
