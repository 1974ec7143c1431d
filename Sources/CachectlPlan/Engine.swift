import CachectlFSCache
import CachectlMount
import CachectlSystem
import CachectlTiers
import CachectlWarm
import FoundationEssentials
import Glibc

/// Turns a `MachineConfig` into ordered actions and carries them out.
///
/// Every action is first asked of its library in check mode (`CacheSetup`,
/// `FscSwitch`, `RAMTiers` with `check: true`, `Prewarmer.plan`), so a plan
/// changes nothing, and an action already in its desired state is never run:
/// a second `apply` makes only reading system calls. Order is dependency
/// order: the cache before fsc on shares (a share mounted with fsc binds to
/// the cache that exists then), tiers before models are placed in them, NVMe-oF
/// before models (a remote namespace may back a tier), warm last (it reads
/// through the links placement made).
public struct Engine: Sendable {
    public let config: MachineConfig
    public let file: String
    public let environment: PlanEnvironment
    public let filter: ActionFilter

    public init(
        config: MachineConfig, file: String, environment: PlanEnvironment = PlanEnvironment(),
        filter: ActionFilter = .all
    ) {
        self.config = config
        self.file = file
        self.environment = environment
        self.filter = filter
    }

    /// One unit of work, in order.
    enum Work: Sendable {
        case cache(CachefilesdConfig)
        case share(MachineConfig.Share)
        case tier(MachineConfig.Tier)
        case nvmeofExport(MachineConfig.NVMeOF.Export)
        case nvmeofConnection(MachineConfig.NVMeOF.Connection)
        case models(MachineConfig.Models)
        case placement(model: String, tier: String?, pin: Bool, strategy: PlacementStrategy)
        case warm(MachineConfig.WarmList)

        var kind: Action.Kind {
            switch self {
            case .cache: .cache
            case .share: .share
            case .tier: .tier
            case .nvmeofExport: .nvmeofExport
            case .nvmeofConnection: .nvmeofConnection
            case .models: .models
            case .placement: .placement
            case .warm: .warm
            }
        }

        var target: String {
            switch self {
            case .cache(let cache): cache.dir
            case .share(let share): share.mountpoint
            case .tier(let tier): tier.name
            case .nvmeofExport(let export): export.name
            case .nvmeofConnection(let connection): connection.nqn
            case .models(let models): models.dir
            case .placement(let model, _, _, _): model
            case .warm(let list): list.name
            }
        }
    }

    /// The work the file asks for, in dependency order, after `filter`.
    var work: [Work] {
        var items: [Work] = []
        if let cache = config.cache { items.append(.cache(cache)) }
        items += config.shares.map(Work.share)
        items += config.tiers.map(Work.tier)
        if let nvmeof = config.nvmeof {
            items += nvmeof.exports.map(Work.nvmeofExport)
            items += nvmeof.connections.map(Work.nvmeofConnection)
        }
        if let models = config.models {
            items.append(.models(models))
            for (model, tier) in models.pinned.sorted(by: { $0.key < $1.key }) {
                items.append(.placement(model: model, tier: tier, pin: true, strategy: models.strategy))
            }
            for model in models.promote {
                items.append(.placement(model: model, tier: nil, pin: false, strategy: models.strategy))
            }
        }
        for list in config.warm where list.onApply || filter.names(.warm, list.name) {
            items.append(.warm(list))
        }
        return items.filter { item in
            switch item {
            case .placement:
                filter.includes(.placement, name: item.target) || filter.includes(.models, name: item.target)
            default: filter.includes(item.kind, name: item.target)
            }
        }
    }

    // MARK: - plan

    /// Every action in check mode: what would change, before and after. Changes nothing.
    /// An action that depends on an earlier pending one (promote into a tier not
    /// created yet) cannot be checked fully; it is reported pending with a note.
    public func plan() -> PlanReport {
        var actions: [Action] = []
        var failed = false
        for item in work {
            let pendingBefore = actions.contains { $0.status == .pending }
            do {
                actions.append(try check(item))
            } catch {
                var action = Action(kind: item.kind, target: item.target)
                if pendingBefore, isDependent(item), !(error is MissingReference) {
                    action.changed = true
                    action.status = .pending
                    action.after = "checked again when the earlier steps have run"
                    action.notes = ["cannot be checked before the earlier steps: \(error)"]
                } else {
                    action.status = .failed
                    action.error = String(describing: error)
                    failed = true
                }
                actions.append(action)
            }
        }
        return PlanReport(
            changed: actions.contains(where: \.changed), failed: failed, check: true, file: file, actions: actions)
    }

    /// Placement and warm read what earlier steps make (tiers, links).
    private func isDependent(_ item: Work) -> Bool {
        switch item {
        case .placement, .warm, .models: true
        default: false
        }
    }

    // MARK: - apply

    /// Plans first (nothing is changed if any action fails its check), then runs
    /// each action that is not already in its desired state, in order. Stops at
    /// the first failure, after rolling back that action's partial work; the
    /// actions after it are reported `skipped`. The plan and the run happen under
    /// one lock (``withApplyLock(_:)``): a second apply waits, then finds the
    /// first one's work done.
    public func apply() -> PlanReport {
        withApplyLock { applyHoldingLock() }
    }

    private func applyHoldingLock() -> PlanReport {
        let planned = plan()
        if planned.failed {
            var report = planned
            report.check = false
            report.changed = false
            report.actions = planned.actions.map { action in
                var action = action
                if action.status == .pending {
                    action.status = .skipped
                    action.changed = false
                }
                return action
            }
            return report
        }
        var actions: [Action] = []
        var stopped = false
        for item in work {
            if stopped {
                var action =
                    planned.actions.first { $0.kind == item.kind && $0.target == item.target }
                    ?? Action(kind: item.kind, target: item.target)
                action.status = .skipped
                action.changed = false
                actions.append(action)
                continue
            }
            // Asked again: an earlier action may have brought this one to its state.
            var action: Action
            do {
                action = try check(item)
            } catch {
                action = Action(kind: item.kind, target: item.target, status: .failed)
                action.error = String(describing: error)
                actions.append(action)
                stopped = true
                continue
            }
            guard action.status == .pending else {
                actions.append(action)
                continue
            }
            do {
                action = try run(item, planned: action)
                action.status = action.changed ? .done : .unchanged
            } catch let failure as ChangeFailure {
                action.status = .failed
                action.changed = failure.changed
                action.error = String(describing: failure.underlying)
                action.rollback = failure.rollback
                stopped = true
            } catch {
                action.status = .failed
                action.changed = false
                action.error = String(describing: error)
                action.rollback =
                    "nothing to roll back: \(item.kind.rawValue) undoes its own partial steps before it reports an error"
                stopped = true
            }
            actions.append(action)
        }
        return PlanReport(
            changed: actions.contains(where: \.changed), failed: actions.contains { $0.status == .failed },
            check: false,
            file: file, actions: actions)
    }

    /// The file names something that does not exist (a model not in the cold
    /// store): no earlier step can fix that, so planning fails at once.
    struct MissingReference: Error, CustomStringConvertible {
        var description: String
    }

    var tiers: RAMTiers {
        RAMTiers(stateFile: environment.tierState, roots: environment.roots, remotes: FabricsTierLink())
    }

    // MARK: - per kind

    func check(_ item: Work) throws -> Action {
        switch item {
        case .cache(let cache): try checkCache(cache)
        case .share(let share): try runShare(share, check: true)
        case .tier(let tier): try runTier(tier, check: true)
        case .nvmeofExport(let export): try runExport(export, check: true)
        case .nvmeofConnection(let connection): try runConnection(connection, check: true)
        case .models(let models): try runModels(models, check: true)
        case .placement(let model, let tier, let pin, let strategy):
            try runPlacement(model, tier: tier, pin: pin, strategy: strategy, check: true)
        case .warm(let list): try checkWarm(list).action
        }
    }

    func run(_ item: Work, planned: Action) throws -> Action {
        switch item {
        case .cache(let cache): try runCache(cache, planned: planned)
        case .share(let share): try runShare(share, check: false)
        case .tier(let tier): try runTier(tier, check: false)
        case .nvmeofExport(let export): try runExport(export, check: false)
        case .nvmeofConnection(let connection): try runConnection(connection, check: false)
        case .models(let models): try runModels(models, check: false)
        case .placement(let model, let tier, let pin, let strategy):
            try runPlacement(model, tier: tier, pin: pin, strategy: strategy, check: false)
        case .warm(let list): try runWarm(list)
        }
    }
}
