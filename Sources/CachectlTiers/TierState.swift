import CachectlSystem
import FoundationEssentials
import Glibc

/// One tier cachectl created: its spec plus what the kernel handed out.
public struct TierRecord: Codable, Sendable, Equatable {
    public var spec: TierSpec
    /// zram device number (`/dev/zramN`) while the tier exists.
    public var zramDevice: Int?
    /// cachectl made the mount point directory, so destroy removes it again.
    public var createdPath: Bool

    public init(spec: TierSpec, zramDevice: Int? = nil, createdPath: Bool = false) {
        self.spec = spec
        self.zramDevice = zramDevice
        self.createdPath = createdPath
    }
}

/// A model whose files have copies in a tier and whose links point at them.
public struct PlacementRecord: Codable, Sendable, Equatable {
    public var tier: String
    /// Paths relative to the cold store (and so to the models dir and the tier).
    public var files: [String]
    public var bytes: UInt64

    public init(tier: String, files: [String], bytes: UInt64) {
        self.tier = tier
        self.files = files
        self.bytes = bytes
    }
}

/// Everything cachectl remembers about tiers and placement, in one JSON file.
public struct TierState: Codable, Sendable, Equatable {
    public var version = 1
    /// Directory applications read models from (`OLLAMA_MODELS`, a llama.cpp dir):
    /// it holds symlinks only, into the cold store or a tier.
    public var modelsDir: String?
    /// Where the models really live (often a network share); never written to.
    public var coldStore: String?
    public var tiers: [TierRecord] = []
    /// Model name → where it is placed.
    public var placements: [String: PlacementRecord] = [:]
    /// Model name → tier it always goes to.
    public var pins: [String: String] = [:]
    /// Next tier index (in rank order) for the round-robin strategy.
    public var roundRobinNext = 0

    public init() {}

    public func tier(named name: String) -> TierRecord? { tiers.first { $0.spec.name == name } }

    /// Models placed in a tier, by name.
    public func models(in tier: String) -> [String] {
        placements.filter { $0.value.tier == tier }.map(\.key).sorted()
    }

    /// Tiers in placement order: rank, then name.
    public var tiersBySpeed: [TierRecord] {
        tiers.sorted { ($0.spec.rank, $0.spec.name) < ($1.spec.rank, $1.spec.name) }
    }
}

/// The state file: read, written atomically, and guarded by a lock file so two
/// cachectl runs never interleave their changes.
public struct TierStateFile: Sendable {
    public static let defaultPath = "/var/lib/cachectl/tiers.json"
    /// Environment variable that overrides the default path (tests, containers).
    public static let environmentVariable = "CACHECTL_TIERS_STATE"

    public let path: String

    public init(path: String) { self.path = Path.absolute(path) }

    /// The path from a flag, else the environment, else the default.
    public static func resolve(_ flag: String?) -> TierStateFile {
        if let flag, !flag.isEmpty { return TierStateFile(path: flag) }
        if let env = ProcessInfo.processInfo.environment[environmentVariable], !env.isEmpty {
            return TierStateFile(path: env)
        }
        return TierStateFile(path: defaultPath)
    }

    /// The saved state; an empty state when the file does not exist yet.
    public func load() throws -> TierState {
        guard access(path, F_OK) == 0 else { return TierState() }
        let bytes = try AtomicFile.readBytes(path)
        do {
            return try StateJSON.decode(TierState.self, from: bytes)
        } catch {
            throw CachectlError.failed(
                "parse state file", path: path,
                hint: "\(error); fix or move the file away (cachectl tier health rebuilds links from the cold store)")
        }
    }

    /// Writes the state atomically. Returns false when it was already exactly this.
    @discardableResult
    public func save(_ state: TierState) throws -> Bool {
        try Path.makeDirectory(Path.directory(of: path))
        return try AtomicFile.write(try StateJSON.encode(state), to: path, mode: 0o644)
    }

    /// Runs `body` holding an exclusive flock(2) on `path.lock`.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try Path.makeDirectory(Path.directory(of: path))
        let lock = try OpenFile(path + ".lock", flags: O_RDWR | O_CREAT, mode: 0o644)
        _ = try sys("flock", lock.path) { flock(lock.fd, LOCK_EX) }
        defer { _ = flock(lock.fd, LOCK_UN) }
        return try body()
    }
}
