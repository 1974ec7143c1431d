import CachectlMount
import CachectlSystem
import Glibc

extension RAMTiers {
    /// All tiers in speed order, with usage and zram counters.
    public func listTiers() throws -> [TierStatus] {
        let state = try stateFile.load()
        return state.tiersBySpeed.map { status(of: $0, state: state) }
    }

    /// Creates a tier, or mounts it again when it is recorded but gone (after a
    /// reboot). Idempotent: an identical live tier is left alone.
    public func createTier(_ spec: TierSpec, check: Bool = false) throws -> TierChange {
        try spec.validate()
        return try transaction(check: check) { state in
            if let existing = state.tier(named: spec.name) {
                let differs = Self.immutableDifferences(existing.spec, spec)
                if !differs.isEmpty {
                    throw CachectlError.failed(
                        "create tier \(spec.name)",
                        hint: "it exists with a different \(differs.joined(separator: ", ")); destroy it first"
                            + (differs == ["size"]
                                ? " or use: cachectl tier resize \(spec.name) --size \(spec.size)" : ""))
                }
                var updated = existing
                updated.spec.rank = spec.rank
                if isLive(existing) {
                    let rankChanged = existing.spec.rank != spec.rank
                    if rankChanged && !check { state.replace(updated) }
                    return TierChange(
                        changed: rankChanged, action: rankChanged ? "rank" : "exists",
                        tier: status(of: rankChanged ? updated : existing, state: state), demoted: [],
                        steps: rankChanged ? ["rank \(existing.spec.rank) → \(spec.rank)"] : [])
                }
                // Recorded but not mounted (reboot, or unmounted by hand): whatever was
                // placed there is gone, so links fall back to cold storage first.
                let log = ChangeLog(check: check)
                let demoted = state.models(in: spec.name)
                for model in demoted {
                    try log.perform("demote \(model) (the tier was gone)") { try demoteModel(model, state: &state) }
                }
                let fresh = try rollingBack(log) { try bringUp(spec, previous: existing, log: log) }
                if check {
                    return TierChange(
                        changed: true, action: "would recreate", tier: status(of: existing, state: state),
                        demoted: demoted, steps: log.steps)
                }
                state.replace(fresh)
                return TierChange(
                    changed: true, action: "recreated", tier: status(of: fresh, state: state), demoted: demoted,
                    steps: log.steps)
            }
            if let other = state.tiers.first(where: { $0.spec.path == spec.path }) {
                throw CachectlError.failed(
                    "create tier \(spec.name)", path: spec.path, hint: "tier \(other.spec.name) already uses that path")
            }
            if let entry = try MountTable.entry(at: spec.path, roots: roots) {
                // Our own mount, made by a run killed before it saved the state: adopt it.
                let backend = backend(for: spec.type)
                if backend.adopts(entry, as: spec) {
                    var record = TierRecord(spec: spec)
                    if check {
                        return TierChange(
                            changed: true, action: "would adopt", tier: status(of: record, state: state), demoted: [],
                            steps: [])
                    }
                    let log = ChangeLog(check: false)
                    log.perform(
                        "adopt \(entry.fstype) \(entry.source) already mounted on \(spec.path) (left by an interrupted run)"
                    ) {}
                    if !OptionString.split(entry.options).contains("size=\(spec.size.bytes / 1024)k") {
                        record = try rollingBack(log) { try backend.resize(record, to: spec, log: log) }
                    }
                    record.createdPath = false
                    state.tiers.append(record)
                    return TierChange(
                        changed: true, action: "adopted", tier: status(of: record, state: state), demoted: [],
                        steps: log.steps)
                }
                throw CachectlError(
                    "create tier \(spec.name)", path: spec.path, errno: EBUSY,
                    hint: "\(entry.fstype) from \(entry.source) is already mounted there; choose another --path")
            }
            try Self.refuseHidingFiles(at: spec.path, tier: spec.name)
            let log = ChangeLog(check: check)
            let record = try rollingBack(log) { try bringUp(spec, previous: nil, log: log) }
            if check {
                return TierChange(
                    changed: true, action: "would create", tier: status(of: TierRecord(spec: spec), state: state),
                    demoted: [], steps: log.steps)
            }
            state.tiers.append(record)
            return TierChange(
                changed: true, action: "created", tier: status(of: record, state: state), demoted: [],
                steps: log.steps)
        }
    }

    /// Unmounts a tier and frees its memory. Refuses while models are placed
    /// there unless `demote`; a busy mount is refused unless `force`.
    public func destroyTier(_ name: String, demote: Bool = false, force: Bool = false, check: Bool = false) throws
        -> TierChange
    {
        try TierSpec.validateName(name)
        return try transaction(check: check) { state in
            guard let record = state.tier(named: name) else {
                return TierChange(changed: false, action: "absent", tier: nil, demoted: [], steps: [])
            }
            let placed = state.models(in: name)
            let demote = demote || backend(for: record.spec.type).demotesOnDestroy
            if !placed.isEmpty && !demote {
                throw CachectlError.failed(
                    "destroy tier \(name)",
                    hint: "models are placed there: \(placed.joined(separator: ", ")); demote them, or pass --demote")
            }
            let before = status(of: record, state: state)
            // Nothing here can be undone (a demotion, an unmount): a failure part
            // way leaves the tier recorded, and destroying it again goes on from there.
            let log = ChangeLog(check: check)
            for model in placed { try log.perform("demote \(model)") { try demoteModel(model, state: &state) } }
            try tearDown(record, force: force, log: log)
            if record.createdPath {
                // Best effort: a directory someone put files in stays.
                try? log.perform("remove \(record.spec.path)") {
                    _ = try sys("rmdir", record.spec.path) { rmdir(record.spec.path) }
                }
            }
            state.tiers.removeAll { $0.spec.name == name }
            state.pins = state.pins.filter { $0.value != name }
            return TierChange(
                changed: true, action: check ? "would destroy" : "destroyed", tier: before, demoted: placed,
                steps: log.steps)
        }
    }

    /// Changes a tier's size: tmpfs remounts in place (never below what is
    /// stored); zram is rebuilt, which only an empty tier allows.
    public func resizeTier(_ name: String, size: ByteSize, check: Bool = false) throws -> TierChange {
        try TierSpec.validateName(name)
        return try transaction(check: check) { state in
            guard var record = state.tier(named: name) else {
                throw CachectlError(.notFound, "resize tier \(name)", hint: "no such tier; see: cachectl tier list")
            }
            var spec = record.spec
            spec.size = size
            try spec.validate()
            let backend = backend(for: record.spec.type)
            let live = isLive(record)
            let current = (live ? backend.currentSize(record) : nil) ?? record.spec.size.bytes
            if current == size.bytes && record.spec.size == size {
                return TierChange(
                    changed: false, action: "unchanged", tier: status(of: record, state: state), demoted: [], steps: [])
            }
            if live { try backend.checkResize(record, to: size, models: state.models(in: name)) }
            let steps = ["size \(record.spec.size) → \(size)"]
            let log = ChangeLog(check: check)
            let original = record
            if live {
                record = try rollingBack(log) { try backend.resize(record, to: spec, log: log) }
            } else {
                log.perform(
                    "record size \(size): the tier is not mounted now, so it applies when it is created again "
                        + "(cachectl tier health --restore)"
                ) { record.spec = spec }
            }
            state.replace(record)
            return TierChange(
                changed: true, action: check ? "would resize" : "resized",
                tier: status(of: check ? original : record, state: state),
                demoted: [], steps: steps + log.steps)
        }
    }

    static let mountFlags = UInt(MS_NOSUID | MS_NODEV | MS_NOATIME)

    /// Mounts a tier through its backend, on a directory it makes if needed
    /// (removed again by the log's rollback).
    func bringUp(_ spec: TierSpec, previous: TierRecord?, log: ChangeLog) throws -> TierRecord {
        let backend = backend(for: spec.type)
        if let previous { try detachDeadMount(previous, log: log) }
        try Self.refuseHidingFiles(at: spec.path, tier: spec.name)
        var createdPath = previous?.createdPath ?? false
        if access(spec.path, F_OK) != 0 {
            try log.perform("create \(spec.path)", revert: { rmdir(spec.path) }) {
                createdPath = try Path.makeDirectory(spec.path) || createdPath
            }
        }
        var record = try backend.bringUp(spec, previous: previous, log: log)
        record.createdPath = createdPath
        return record
    }

    /// Unmounts the tier (a dead nvmeof mount is detached), then its backend frees what backed it.
    func tearDown(_ record: TierRecord, force: Bool, log: ChangeLog) throws {
        try detachDeadMount(record, log: log)
        if let entry = try MountTable.entry(at: record.spec.path, roots: roots), mount(of: record) != nil {
            try log.perform("unmount \(entry.fstype) from \(record.spec.path)") {
                try Mounter.unmount(record.spec.path, force: force)
            }
        }
        try backend(for: record.spec.type).release(record, log: log)
    }

    /// Detaches, lazily, a mount of the tier whose backing went away: its readers
    /// keep getting errors, and the tier can be mounted there again.
    func detachDeadMount(_ record: TierRecord, log: ChangeLog) throws {
        guard let entry = backend(for: record.spec.type).deadMount(record) else { return }
        let path = record.spec.path
        try log.perform("detach \(entry.source) from \(path) (its target is gone)") {
            _ = try sys("umount", path) { umount2(path, Int32(MNT_DETACH)) }
        }
    }

    /// Runs `body`; when it fails, undoes the log's steps, newest first, and rethrows.
    func rollingBack<T>(_ log: ChangeLog, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            log.rollBack()
            throw error
        }
    }

    /// The last steps of a tier on a block device: a new filesystem (ext4 unless
    /// the spec says xfs), mounted with `discard`, so deleted copies punch holes in
    /// what backs the device and give its RAM back. `device` is as the steps name
    /// it (in a check, the one that would be there). `resetUndoesMkfs`: the
    /// device is reset by a revert the log runs after the unmount (zram), which wipes what mkfs wrote.
    static func formatAndMount(_ device: String, _ spec: TierSpec, log: ChangeLog, resetUndoesMkfs: Bool)
        throws
    {
        let filesystem = spec.filesystem ?? .ext4
        try log.perform("make \(filesystem.rawValue) on \(device)", revert: resetUndoesMkfs ? {} : nil) {
            try makeFilesystem(filesystem, on: device)
        }
        try log.perform(
            "mount \(device) on \(spec.path) with discard", revert: { try? Mounter.unmount(spec.path, force: false) }
        ) {
            try Mounter.mount(
                source: device, target: spec.path, fstype: filesystem.rawValue, flags: mountFlags, data: "discard")
        }
    }

    static func makeFilesystem(_ fs: TierFilesystem, on device: String) throws {
        switch fs {
        case .ext4:
            // No journal and no reserved blocks: the tier is rebuilt from cold
            // storage after a crash anyway, and RAM is too dear for either.
            try ExternalCommand(["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "nodiscard", device])
                .check(hint: "install e2fsprogs")
        case .xfs:
            try ExternalCommand(["mkfs.xfs", "-q", "-f", "-K", device]).check(hint: "install xfsprogs")
        }
    }

    /// Refuses to mount a tier on a directory that has files in it: the mount
    /// would hide them (a tier over /usr/share/doc). A missing directory is fine.
    static func refuseHidingFiles(at path: String, tier: String) throws {
        guard let names = try? Path.entries(of: path), !names.isEmpty else { return }
        let shown = names.sorted().prefix(3).joined(separator: ", ") + (names.count > 3 ? ", ..." : "")
        throw CachectlError(
            "mount tier \(tier) on", path: path, errno: ENOTEMPTY,
            hint:
                "the directory holds \(names.count) entr\(names.count == 1 ? "y" : "ies") (\(shown)) that the tier would hide; "
                + "choose an empty or new --path")
    }

    static func immutableDifferences(_ a: TierSpec, _ b: TierSpec) -> [String] {
        var fields: [String] = []
        if a.type != b.type { fields.append("type") }
        if a.path != b.path { fields.append("path") }
        if a.size != b.size { fields.append("size") }
        if a.algorithm != b.algorithm { fields.append("algorithm") }
        if a.filesystem != b.filesystem { fields.append("filesystem") }
        if b.remote != nil && a.remote != b.remote { fields.append("remote export") }
        return fields
    }

    static func isEmptyDirectory(_ path: String) -> Bool {
        guard let entries = try? ModelCatalog.listDirectory(path) else { return true }
        // ext4's lost+found is always there and hidden names are cachectl's temp files.
        return entries.allSatisfy { $0.name == "lost+found" }
    }
}

extension TierState {
    mutating func replace(_ record: TierRecord) {
        if let index = tiers.firstIndex(where: { $0.spec.name == record.spec.name }) {
            tiers[index] = record
        } else {
            tiers.append(record)
        }
    }
}
