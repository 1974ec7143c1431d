import CachectlMount
import CachectlSystem

/// Everything about a tier that depends on what backs it. `RAMTiers` keeps the
/// rest (the state file and its lock, the mount point directory, unmounting,
/// placement and models) and reaches a type's backend only through
/// ``RAMTiers/backend(for:)``. A new type of tier is a ``TierType`` case (its
/// default rank and whether it has a filesystem), a backend in a file of its own,
/// and the type in the schema's enum (integration/schema).
///
/// Every change a backend makes is a step of the command's ``ChangeLog``, with
/// its revert where there is one: a failure part way is rolled back by the
/// caller, newest first, so no backend writes its own clean-up.
protocol TierBackend {
    /// Mounts a new tier on `spec.path`, an empty directory. `previous` is the
    /// record of the same tier from before (a reboot, a resize).
    func bringUp(_ spec: TierSpec, previous: TierRecord?, log: ChangeLog) throws -> TierRecord
    /// After the tier's filesystem is unmounted (or was found gone): frees what backed it.
    func release(_ record: TierRecord, log: ChangeLog) throws
    /// `entry` (what is mounted on the tier's path) when it is this tier, live.
    func liveMount(_ entry: MountEntry, of record: TierRecord) -> MountEntry?
    /// Refuses, before anything changes, a new size a live tier cannot take now.
    func checkResize(_ record: TierRecord, to size: ByteSize, models: [String]) throws
    /// Gives a live tier its new size.
    func resize(_ record: TierRecord, to spec: TierSpec, log: ChangeLog) throws -> TierRecord
    /// The size the kernel reports for a live tier, when it can differ from the recorded one.
    func currentSize(_ record: TierRecord) -> UInt64?
    /// Whether `entry`, found on the path of a tier not in the state file, is this
    /// tier's own mount left by a run killed before it saved the state (then it is
    /// adopted, not refused).
    func adopts(_ entry: MountEntry, as spec: TierSpec) -> Bool
    /// What is mounted on the tier's path when its backing went away (then it is
    /// detached before anything else is done there), or nil.
    func deadMount(_ record: TierRecord) -> MountEntry?
    /// Its models are demoted before it is destroyed even when not asked to.
    var demotesOnDestroy: Bool { get }
    /// When it is not live, the copies under its mount are left alone: its
    /// backing is gone, and touching them only waits for I/O errors.
    var leavesDeadCopiesAlone: Bool { get }
}

extension TierBackend {
    func currentSize(_ record: TierRecord) -> UInt64? { nil }
    func adopts(_ entry: MountEntry, as spec: TierSpec) -> Bool { false }
    func deadMount(_ record: TierRecord) -> MountEntry? { nil }
    var demotesOnDestroy: Bool { false }
    var leavesDeadCopiesAlone: Bool { false }
}

extension RAMTiers {
    /// The one place a tier type maps to the code that backs it.
    func backend(for type: TierType) -> any TierBackend {
        switch type {
        case .tmpfs: TmpfsTier()
        case .zram: ZramTier(roots: roots)
        case .nvmeof: NVMeOFTier(roots: roots, remotes: remotes)
        }
    }
}
