import CachectlSystem
import CachectlTiers
import CachectlWarm

/// Where `apply` reads and writes the machine's state. The defaults are the
/// real system; tests point every path into a scratch tree.
public struct PlanEnvironment: Sendable {
    public var roots: KernelRoots
    public var cachefilesdConfigPath: String
    /// Start/restart cachefilesd (off where there is no daemon to run: unit tests).
    public var manageCacheDaemon: Bool
    public var tierState: TierStateFile
    public var warmState: WarmStateFile
    /// Progress bars on stderr (only on a tty).
    public var progress: Bool
    /// Hand each warm list that needs reading to its own systemd unit
    /// (`cachectl-warm@NAME.service`, started without waiting) instead of reading
    /// here: what `cachectl-apply.service` does at boot, so that apply ends in
    /// seconds and warming never holds anything back.
    public var warmInUnits: Bool

    public init(
        roots: KernelRoots = .system, cachefilesdConfigPath: String = "/etc/cachefilesd.conf",
        manageCacheDaemon: Bool = true, tierState: TierStateFile = TierStateFile.resolve(nil),
        warmState: WarmStateFile = WarmStateFile(), progress: Bool = false, warmInUnits: Bool = false
    ) {
        self.roots = roots
        self.cachefilesdConfigPath = cachefilesdConfigPath
        self.manageCacheDaemon = manageCacheDaemon
        self.tierState = tierState
        self.warmState = warmState
        self.progress = progress
        self.warmInUnits = warmInUnits
    }
}

/// One step of a plan: what it acts on, the state before and after, and (after
/// `apply`) what happened.
public struct Action: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case cache, share, tier, models, placement
        case nvmeofExport = "nvmeof-export"
        case nvmeofConnection = "nvmeof-connection"
        case warm

        /// The YAML section it comes from (what `--only` names).
        public var section: String {
            switch self {
            case .cache: "cache"
            case .share: "shares"
            case .tier: "tiers"
            case .models, .placement: "models"
            case .nvmeofExport, .nvmeofConnection: "nvmeof"
            case .warm: "warm"
            }
        }
    }

    public enum Status: String, Codable, Sendable {
        /// Already as desired: nothing to do (and nothing was done).
        case unchanged
        /// Would change (plan, --check).
        case pending
        /// Changed by this apply.
        case done
        /// Failed; what it had done was rolled back (see `rollback`).
        case failed
        /// Not run because an earlier step failed.
        case skipped
    }

    /// `kind target`, e.g. `tier fast`.
    public var id: String { "\(kind.rawValue) \(target)" }
    public var kind: Kind
    public var target: String
    public var before: String
    public var after: String
    public var changed: Bool
    public var status: Status
    /// What is (or would be) done, in order.
    public var steps: [String]
    /// Unified diff of the files it changes (cachefilesd.conf, fstab).
    public var diff: String?
    public var error: String?
    /// What was undone after a failure.
    public var rollback: String?
    public var notes: [String]

    init(
        kind: Kind, target: String, before: String = "", after: String = "", changed: Bool = false,
        status: Status = .unchanged, steps: [String] = [], diff: String? = nil, notes: [String] = []
    ) {
        self.kind = kind
        self.target = target
        self.before = before
        self.after = after
        self.changed = changed
        self.status = status
        self.steps = steps
        self.diff = diff
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, target, before, after, changed, status, steps, diff, error, rollback, notes
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(kind, forKey: .kind)
        try c.encode(target, forKey: .target)
        try c.encode(before, forKey: .before)
        try c.encode(after, forKey: .after)
        try c.encode(changed, forKey: .changed)
        try c.encode(status, forKey: .status)
        try c.encode(steps, forKey: .steps)
        try c.encodeIfPresent(diff, forKey: .diff)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encodeIfPresent(rollback, forKey: .rollback)
        try c.encode(notes, forKey: .notes)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        target = try c.decode(String.self, forKey: .target)
        before = try c.decode(String.self, forKey: .before)
        after = try c.decode(String.self, forKey: .after)
        changed = try c.decode(Bool.self, forKey: .changed)
        status = try c.decode(Status.self, forKey: .status)
        steps = try c.decode([String].self, forKey: .steps)
        diff = try c.decodeIfPresent(String.self, forKey: .diff)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        rollback = try c.decodeIfPresent(String.self, forKey: .rollback)
        notes = try c.decode([String].self, forKey: .notes)
    }
}

/// What `plan` or `apply` reports.
public struct PlanReport: Codable, Sendable, Equatable {
    /// Something changed (apply) or would change (plan, --check).
    public var changed: Bool
    public var failed: Bool
    /// True for `plan` and `apply --check`: nothing was changed.
    public var check: Bool
    public var file: String
    /// In dependency order: cache, shares, tiers, NVMe-oF, models, placements, warm.
    public var actions: [Action]

    public var summary: String {
        let count: (Action.Status) -> Int = { status in actions.filter { $0.status == status }.count }
        if failed {
            let failure = actions.first { $0.status == .failed }
            return "failed at \(failure?.id ?? "planning")"
                + (failure?.error.map { ": \($0)" } ?? "")
                + "; \(count(.done)) done, \(count(.skipped)) skipped"
        }
        if check {
            return changed
                ? "\(count(.pending)) of \(actions.count) action(s) would change"
                : "nothing to change (\(actions.count) action(s) checked)"
        }
        return changed
            ? "\(count(.done)) of \(actions.count) action(s) changed"
            : "nothing changed (\(actions.count) action(s) checked)"
    }
}

/// Which actions to consider: `--only warm:boot`, `--only tiers`.
public struct ActionFilter: Sendable, Equatable {
    public var sections: [(section: String, name: String?)]

    public static let all = ActionFilter(sections: [])

    public init(sections: [(section: String, name: String?)]) { self.sections = sections }

    public static func == (a: ActionFilter, b: ActionFilter) -> Bool {
        a.sections.map { "\($0.section):\($0.name ?? "")" } == b.sections.map { "\($0.section):\($0.name ?? "")" }
    }

    public static let sectionNames = ["cache", "shares", "tiers", "models", "nvmeof", "warm"]

    /// Parses `SECTION` or `SECTION:NAME`.
    public init(parsing items: [String]) throws(CachectlError) {
        var sections: [(String, String?)] = []
        for item in items {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            guard let section = parts.first, Self.sectionNames.contains(section) else {
                throw .usage(
                    ["only"],
                    "unknown section '\(item)'; one of \(Self.sectionNames.joined(separator: ", ")), optionally :NAME (e.g. warm:boot)"
                )
            }
            sections.append((section, parts.count > 1 ? parts[1] : nil))
        }
        self.sections = sections
    }

    func includes(_ kind: Action.Kind, name: String) -> Bool {
        sections.isEmpty || sections.contains { $0.section == kind.section && ($0.name == nil || $0.name == name) }
    }

    /// Named explicitly (a warm list with on_apply: false runs only then).
    func names(_ kind: Action.Kind, _ name: String) -> Bool {
        sections.contains { $0.section == kind.section && $0.name == name }
    }
}
