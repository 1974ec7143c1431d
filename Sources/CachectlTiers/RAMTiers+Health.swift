import CachectlSystem
import Glibc

/// What `tier health` found and repaired.
public struct HealthReport: Encodable, Sendable {
    public struct Tier: Encodable, Sendable {
        public var name: String
        public var live: Bool
        /// Created again by `restore`.
        public var recreated: Bool
    }

    public var changed: Bool
    public var tiers: [Tier]
    /// Models whose tier copy was gone, now served from cold storage.
    public var demoted: [String]
    /// Pinned models copied back into their tier by `restore`.
    public var repromoted: [String]
    public var links: [LinkRepair]
    /// Dangling links removed.
    public var removedLinks: [String]
    /// Mounts of nvmeof tiers whose target went away, detached.
    public var detached: [String] = []
    /// Temp copies a killed promote left in a tier (`.NAME.cachectl-copy-PID`), removed.
    public var removedCopies: [String] = []
    /// True when every tier is live and every link resolves.
    public var healthy: Bool
}

extension RAMTiers {
    /// Repairs what a reboot leaves: tiers gone or emptied. Every model whose copy
    /// is gone falls back to cold storage, and every link in the models directory
    /// ends up pointing at a file that exists. With `restore`, tiers that are gone
    /// are created again and pinned models copied back into them.
    public func health(restore: Bool = false, check: Bool = false, progress: Bool = false) throws -> HealthReport {
        var report = try transaction(check: check) { state -> HealthReport in
            var report = HealthReport(
                changed: false, tiers: [], demoted: [], repromoted: [], links: [], removedLinks: [], healthy: true)
            // 1. Placements whose copies are gone go back to cold storage.
            for name in state.placements.keys.sorted() where !placementIntact(name, state: state) {
                if check { state.placements[name] = nil } else { try demoteModel(name, state: &state) }
                report.demoted.append(name)
            }
            // 2. Tiers: which are mounted; with restore, mount the rest again.
            for record in state.tiersBySpeed {
                var entry = HealthReport.Tier(name: record.spec.name, live: isLive(record), recreated: false)
                if !entry.live && !restore && !check {
                    let log = ChangeLog(check: false)
                    try detachDeadMount(record, log: log)
                    report.detached += log.steps
                }
                if !entry.live && restore {
                    if !check {
                        let log = ChangeLog(check: false)
                        state.replace(try rollingBack(log) { try bringUp(record.spec, previous: record, log: log) })
                        entry.live = true
                    }
                    entry.recreated = true
                }
                report.tiers.append(entry)
            }
            // 3. Temp copies a killed promote left behind (we hold the lock: none is in use).
            for record in state.tiersBySpeed where isLive(record) {
                report.removedCopies += ModelFiles.staleCopies(tierRoot: record.spec.path, remove: !check)
            }
            // 4. Links.
            if let coldStore = state.coldStore {
                let catalog = try ModelCatalog.scan(coldStore: coldStore)
                (report.links, report.removedLinks) = try syncLinks(catalog: catalog, state: state, check: check)
            }
            report.changed =
                !report.demoted.isEmpty || report.tiers.contains(where: \.recreated)
                || !report.links.isEmpty || !report.removedLinks.isEmpty || !report.removedCopies.isEmpty
                || !report.detached.isEmpty
            return report
        }
        // 5. Pinned models back into their tiers (each a transaction of its own).
        if restore && !check {
            let state = try stateFile.load()
            for (model, tier) in state.pins.sorted(by: { $0.key < $1.key }) where state.placements[model] == nil {
                guard let record = state.tier(named: tier), isLive(record) else { continue }
                let change = try promote(model, tier: tier, check: false, progress: progress)
                if change.changed {
                    report.repromoted.append(model)
                    report.changed = true
                }
            }
        }
        report.healthy = report.tiers.allSatisfy(\.live) || check && report.tiers.allSatisfy { $0.live || $0.recreated }
        return report
    }
}
