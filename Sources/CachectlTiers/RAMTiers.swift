import CachectlMount
import CachectlSystem
import Glibc

/// RAM tiers (tmpfs, zram) and the models placed in them: the library behind
/// `cachectl tier`, `models`, `promote` and `demote`, and what `cachectl apply`
/// calls. Every change is made under the state file's lock and recorded in it;
/// every mutating call takes `check` (report, change nothing) and returns a
/// result whose `changed` says whether anything was (or would be) changed.
public struct RAMTiers: Sendable {
    public let stateFile: TierStateFile
    public let roots: KernelRoots
    /// Connects and disconnects the remote namespaces of nvmeof tiers that name
    /// one; without it such tiers use their recorded device and stay connected.
    public let remotes: (any RemoteNamespaceLink)?

    public init(stateFile: TierStateFile, roots: KernelRoots = .system, remotes: (any RemoteNamespaceLink)? = nil) {
        self.stateFile = stateFile
        self.roots = roots
        self.remotes = remotes
    }

    /// Runs a change under the lock; a check only reads.
    func transaction<T>(check: Bool, _ body: (inout TierState) throws -> T) throws -> T {
        if check {
            var state = try stateFile.load()
            return try body(&state)
        }
        return try stateFile.withLock {
            var state = try stateFile.load()
            let before = state
            do {
                let result = try body(&state)
                if state != before { try stateFile.save(state) }
                return result
            } catch {
                // Steps that did happen before the failure are kept in the state
                // (body rolls back what it can and leaves the rest recorded).
                if state != before { _ = try? stateFile.save(state) }
                throw error
            }
        }
    }

    /// Whether the tier is mounted where it should be, and what is there.
    func mount(of record: TierRecord) -> MountEntry? {
        guard let entry = try? MountTable.entry(at: record.spec.path, roots: roots) else { return nil }
        return backend(for: record.spec.type).liveMount(entry, of: record)
    }

    func isLive(_ record: TierRecord) -> Bool { mount(of: record) != nil }
}

/// A tier as `tier list` shows it.
public struct TierStatus: Encodable, Sendable {
    public var name: String
    public var type: TierType
    public var path: String
    public var rank: Int
    /// Configured size.
    public var size: UInt64
    public var algorithm: String?
    public var filesystem: TierFilesystem?
    /// `/dev/zramN` for zram tiers, the NVMe namespace for nvmeof tiers.
    public var device: String?
    /// The export an nvmeof tier connects to, when it names one.
    public var remote: RemoteNamespace?
    /// Mounted and usable now (false after a reboot until `tier health --restore`).
    public var live: Bool
    /// Filesystem usage from statvfs, when live.
    public var usage: SpaceUsage?
    /// zram memory counters (mm_stat), when live.
    public var zram: ZramMemoryStats?
    /// Models placed in this tier.
    public var models: [String]
}

/// What a tier operation did (or, with `check`, would do).
public struct TierChange: Encodable, Sendable {
    public var changed: Bool
    /// `created`, `recreated`, `exists`, `resized`, `destroyed`, `absent`, ...
    public var action: String
    public var tier: TierStatus?
    /// Models demoted to cold storage on the way.
    public var demoted: [String]
    /// Steps taken, in order, for people reading the output.
    public var steps: [String]
}

extension RAMTiers {
    func status(of record: TierRecord, state: TierState) -> TierStatus {
        let live = isLive(record)
        var zram: ZramMemoryStats?
        if live, let id = record.zramDevice { zram = try? ZramDevice(id: id, roots: roots).memoryStats() }
        return TierStatus(
            name: record.spec.name, type: record.spec.type, path: record.spec.path, rank: record.spec.rank,
            size: record.spec.size.bytes, algorithm: record.spec.algorithm, filesystem: record.spec.filesystem,
            device: record.zramDevice.map { ZramDevice(id: $0, roots: roots).devicePath } ?? record.spec.device,
            remote: record.spec.remote,
            live: live, usage: live ? try? SpaceUsage.of(record.spec.path) : nil, zram: zram,
            models: state.models(in: record.spec.name))
    }
}
