import CachectlSystem
import Foundation
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

    public static func path(for mountpoint: String, in directory: String) -> String {
        Path.join(directory, escape(mountpoint) + ".json")
    }

    /// `/mnt/models` → `mnt-models`; `/` → `-`; other bytes as `\xNN`.
    public static func escape(_ path: String) -> String {
        let trimmed = path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        if trimmed.isEmpty { return "-" }
        var out = ""
        for (i, byte) in trimmed.utf8.enumerated() {
            let isPlain = (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a)
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

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    /// Writes the snapshot atomically (readers never see half a file).
    static func write(_ stats: FuseStats, to path: String) throws {
        let data = try encoder().encode(stats)
        try Path.makeDirectory(Path.directory(of: path))
        try AtomicFile.write(Array(data) + [UInt8(ascii: "\n")], to: path, mode: 0o644)
    }

    /// Reads the stats file of `mountpoint`.
    public static func read(mountpoint: String, directory: String = defaultDirectory) throws -> FuseStats {
        let path = path(for: mountpoint, in: directory)
        let bytes = try AtomicFile.readBytes(path)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(FuseStats.self, from: Data(bytes))
    }
}
