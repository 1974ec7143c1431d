import CachectlSystem
import FoundationEssentials
import Glibc

/// What a running mirror reports: the pool, where bytes came from, prefetch.
/// Written by the daemon to its stats file; read by `cachectl fuse stats`.
public struct FuseStats: Codable, Sendable, Equatable {
    public struct FileRatio: Codable, Sendable, Equatable {
        /// Path inside the mount.
        public var path: String
        /// Bytes of the file's data cached (uncompressed).
        public var cachedBytes: UInt64
        /// Bytes those chunks take in the pool.
        public var storedBytes: UInt64
        /// cachedBytes / storedBytes (1.0 = stored raw).
        public var compressionRatio: Double
    }

    public var source: String
    public var mountpoint: String
    public var pid: Int32
    /// Unix time of this snapshot.
    public var updatedAt: Double
    public var compression: String
    public var chunkBytes: UInt64
    public var poolLimitBytes: UInt64
    /// Chunk payload in RAM (compressed size when compressed); never above the limit.
    public var poolUsedBytes: UInt64
    public var poolPeakBytes: UInt64
    /// Uncompressed bytes of file data the pool holds.
    public var cachedBytes: UInt64
    public var chunks: Int
    public var compressedChunks: Int
    /// cachedBytes / poolUsedBytes.
    public var compressionRatio: Double
    /// Estimated bookkeeping memory beside the payload (see README).
    public var overheadBytes: UInt64
    /// Chunk lookups by readers answered from the pool.
    public var hits: UInt64
    /// Chunk lookups by readers that had to read the source.
    public var misses: UInt64
    /// Reader lookups that waited for a chunk another thread was reading.
    public var inflightWaits: UInt64
    /// Bytes returned to the kernel from chunks already in the pool.
    public var bytesFromRam: UInt64
    /// Bytes read from the source (by readers and prefetch).
    public var bytesFromSource: UInt64
    public var prefetchScheduled: UInt64
    /// Chunks read into the pool by prefetch.
    public var prefetchCompleted: UInt64
    public var prefetchCancelled: UInt64
    /// Reader hits on chunks that prefetch brought in.
    public var prefetchHits: UInt64
    public var evictions: UInt64
    /// Times a source change (size or mtime) dropped a file's chunks.
    public var invalidations: UInt64
    /// Files with the most data cached, with their compression ratios.
    public var files: [FileRatio]
    /// FUSE passthrough: "on", "off: why", "disabled" or "undecided" (no open
    /// yet). nil from a daemon older than passthrough support.
    public var passthrough: String? = nil
    /// Opens served by passthrough: the kernel read those files from the pool
    /// without asking the daemon (their bytes are in no other counter).
    public var passthroughOpens: UInt64? = nil

    /// Equal apart from the timestamp: the daemon rewrites the file only on change.
    func sameCounters(as other: FuseStats) -> Bool {
        var a = self
        a.updatedAt = other.updatedAt
        return a == other
    }
}

/// Where a mirror's stats live: `DIR/<escaped mountpoint>.json`, escaped like
/// `systemd-escape --path` so every mountpoint maps to one flat file name.
public enum FuseStatsFile {
    /// `/run/cachectl/fuse` for root; `$XDG_RUNTIME_DIR/cachectl/fuse` (or
    /// `/tmp/cachectl-UID/fuse`) otherwise.
    public static var defaultDirectory: String {
        if getuid() == 0 { return "/run/cachectl/fuse" }
        if let runtime = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            return runtime + "/cachectl/fuse"
        }
        return "/tmp/cachectl-\(getuid())/fuse"
    }

    /// Creates the state directory if needed (0700 for users, 0755 for root) and
    /// checks that no other user controls it: every component of the path, as
    /// given and as resolved, must be owned by root or by this user, and every
    /// directory must be unwritable by others unless it is sticky (/tmp). So a
    /// `/tmp/cachectl-UID` made by another user (or a symlink they planted) is
    /// refused rather than used. Called before anything is written there.
    public static func prepareDirectory(_ directory: String) throws(CachectlError) {
        let me = geteuid()
        let absolute = Path.absolute(directory)
        try checkComponents(of: absolute, createMissing: me == 0 ? 0o755 : 0o700)
        guard let resolved = realpath(absolute, nil) else {
            throw CachectlError("realpath", path: absolute, errno: errno)
        }
        let real = String(cString: resolved)
        free(resolved)
        try checkComponents(of: real, createMissing: nil)
        var st = stat()
        guard lstat(real, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == me else {
            throw CachectlError.failed(
                "state directory", path: absolute,
                hint: "must be a directory owned by uid \(me); set XDG_RUNTIME_DIR or pass --state-dir")
        }
    }

    private static func checkComponents(of path: String, createMissing mode: mode_t?) throws(CachectlError) {
        let me = geteuid()
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            var st = stat()
            if lstat(prefix, &st) != 0 {
                let code = errno
                guard code == ENOENT, let mode else { throw CachectlError("lstat", path: prefix, errno: code) }
                if mkdir(prefix, mode) != 0 && errno != EEXIST {
                    throw CachectlError("mkdir", path: prefix, errno: errno)
                }
                guard lstat(prefix, &st) == 0 else { throw CachectlError("lstat", path: prefix, errno: errno) }
            }
            let kind = st.st_mode & S_IFMT
            let trustedOwner = st.st_uid == 0 || st.st_uid == me
            let othersMayWrite = kind == S_IFDIR && st.st_mode & 0o022 != 0 && st.st_mode & S_ISVTX == 0
            guard trustedOwner, !othersMayWrite, kind == S_IFDIR || kind == S_IFLNK else {
                throw CachectlError.failed(
                    "state directory", path: prefix,
                    hint: (trustedOwner
                        ? "is writable by other users"
                        : "belongs to uid \(st.st_uid), not to this user (uid \(me)) or root")
                        + "; cachectl will not use it. Set XDG_RUNTIME_DIR or pass --state-dir with a directory of your own"
                )
            }
        }
    }

    /// Opens the daemon's log in a prepared state directory for appending: never
    /// through a symlink (O_NOFOLLOW), only a regular file owned by this user with
    /// one link, 0600. Returns the descriptor (close-on-exec).
    public static func openLog(_ path: String) throws(CachectlError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0o600)
        if fd < 0 {
            let code = errno
            throw CachectlError(
                "open", path: path, errno: code,
                hint: code == ELOOP ? "the log is a symlink; refusing to follow it" : nil)
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid(), st.st_nlink == 1 else {
            close(fd)
            throw CachectlError.failed(
                "open", path: path, hint: "the log must be a regular file of this user's with one link; refusing it")
        }
        return fd
    }

    public static func path(for mountpoint: String, in directory: String) -> String {
        Path.join(directory, escape(mountpoint) + ".json")
    }

    /// `/mnt/models` → `mnt-models`; `/` → `-`; other bytes as `\xNN`.
    public static func escape(_ path: String) -> String {
        let trimmed = path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        if trimmed.isEmpty { return "-" }
        var out = ""
        for (i, byte) in trimmed.utf8.enumerated() {
            let isPlain =
                (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a)
                || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
                || (byte == UInt8(ascii: ".") && i > 0)
            if byte == UInt8(ascii: "/") {
                out += "-"
            } else if isPlain {
                out.append(Character(UnicodeScalar(byte)))
            } else {
                let hex = String(byte, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// Writes the snapshot atomically (readers never see half a file).
    static func write(_ stats: FuseStats, to path: String) throws {
        let bytes = try StateJSON.encode(stats)
        try Path.makeDirectory(Path.directory(of: path))
        try AtomicFile.write(bytes, to: path, mode: 0o644)
    }

    /// Reads the stats file of `mountpoint`.
    public static func read(mountpoint: String, directory: String = defaultDirectory) throws -> FuseStats {
        let path = path(for: mountpoint, in: directory)
        let bytes = try AtomicFile.readBytes(path)
        return try StateJSON.decode(FuseStats.self, from: bytes)
    }
}
