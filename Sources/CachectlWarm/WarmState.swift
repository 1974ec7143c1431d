import CachectlSystem
import FoundationEssentials
import Glibc

/// What the last warm of each list did: the throughput `cachectl status`
/// exports, and, for lists warmed `into: disk`, the files that FS-Cache already
/// holds (pages dropped from RAM cannot be measured by residency, so the
/// record is what makes a second apply a no-op).
public struct WarmState: Codable, Sendable, Equatable {
    public var lists: [String: WarmRecord] = [:]
    public init() {}
}

public struct WarmRecord: Codable, Sendable, Equatable {
    /// Unix time the warm finished.
    public var finishedAt: Double
    public var into: String
    public var bytesRead: UInt64
    public var totalBytes: UInt64
    public var seconds: Double
    /// Bytes read per second.
    public var throughput: Double
    public var residencyPercent: Double?
    /// The files as they were when warmed (device, inode, size, mtime).
    public var files: [FileStamp]

    public init(
        finishedAt: Double, into: String, bytesRead: UInt64, totalBytes: UInt64, seconds: Double, throughput: Double,
        residencyPercent: Double?, files: [FileStamp]
    ) {
        self.finishedAt = finishedAt
        self.into = into
        self.bytesRead = bytesRead
        self.totalBytes = totalBytes
        self.seconds = seconds
        self.throughput = throughput
        self.residencyPercent = residencyPercent
        self.files = files
    }
}

/// Identifies one version of a file: a change of any field means it must be read again.
public struct FileStamp: Codable, Sendable, Equatable, Hashable {
    public var path: String
    public var device: UInt64
    public var inode: UInt64
    public var size: UInt64
    public var mtimeNanoseconds: Int64

    /// stat(2) of the path (following links); nil when it cannot be read.
    public static func of(_ path: String) -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStamp(
            path: path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: UInt64(st.st_size),
            mtimeNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }
}

/// `/var/lib/cachectl/warm.json`, written atomically only when a warm ran, in
/// ``StateJSON``'s style (snake_case keys; a file with the camelCase keys of
/// earlier versions still reads).
public struct WarmStateFile: Sendable {
    public static let defaultPath = "/var/lib/cachectl/warm.json"
    public let path: String

    public init(path: String = WarmStateFile.defaultPath) { self.path = path }

    /// The saved state; empty when there is none (or it cannot be parsed: it is only a record).
    public func load() -> WarmState {
        guard let bytes = try? AtomicFile.readBytes(path),
            let state = try? StateJSON.decode(WarmState.self, from: bytes)
        else { return WarmState() }
        return state
    }

    public func record(_ list: String, _ record: WarmRecord) throws {
        var state = load()
        state.lists[list] = record
        let bytes = try StateJSON.encode(state)
        try Path.makeDirectory(Path.directory(of: path))
        try AtomicFile.write(bytes, to: path, mode: 0o644)
    }
}
