import CachectlSystem
import Glibc

/// A model as `cachectl models` shows it.
public struct ModelStatus: Encodable, Sendable {
    public var name: String
    public var layout: ModelLayout
    public var bytes: UInt64
    public var files: Int
    /// `cold`, or the name of the tier holding it.
    public var location: String
    public var pinnedTier: String?
    /// Every link in the models dir exists and points where the placement says.
    public var linked: Bool
    public var problem: String?
}

/// What a promote or demote did (or, with `check`, would do).
public struct PlacementChange: Encodable, Sendable {
    public var changed: Bool
    /// `promoted`, `moved`, `demoted`, `already placed`, `already cold`, `would ...`
    public var action: String
    public var model: String
    public var layout: ModelLayout
    /// Tier it is in now (nil: cold).
    public var tier: String?
    /// Tier it was in before (nil: cold).
    public var from: String?
    public var bytes: UInt64
    public var files: Int
    public var copiedBytes: UInt64
    /// Ollama blobs whose SHA-256 was checked while copying.
    public var verifiedBlobs: Int
    public var seconds: Double
    public var pinned: Bool
    /// The model's links in the models directory (what applications open).
    public var links: [String] = []
}

/// A link that was (or would be) created or repointed.
public struct LinkRepair: Encodable, Sendable, Equatable {
    public var link: String
    public var target: String
    /// What it pointed at before (nil: it did not exist).
    public var was: String?
}

/// Result of `configureModels`.
public struct ModelsSetup: Encodable, Sendable {
    public var changed: Bool
    public var modelsDir: String
    public var coldStore: String
    public var links: [LinkRepair]
}

extension RAMTiers {
    /// Sets the models directory and the cold store and links every cold model into
    /// the models directory. Idempotent.
    public func configureModels(modelsDir: String, coldStore: String, check: Bool = false) throws -> ModelsSetup {
        let models = Path.absolute(modelsDir).trimmingTrailingSlashes()
        let cold = Path.absolute(coldStore).trimmingTrailingSlashes()
        guard models != cold, !models.hasPrefix(cold + "/"), !cold.hasPrefix(models + "/") else {
            throw CachectlError.usage(
                ["models", "cold_store"],
                "the models directory and the cold store must be separate trees: \(models), \(cold)")
        }
        for path in [models, cold] where path.contains("\n") {
            throw CachectlError.usage(
                ["models", path == models ? "dir" : "cold_store"], "path contains a newline: \(path)")
        }
        var st = stat()
        guard stat(cold, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw CachectlError(
                "cold store", path: cold, errno: ENOENT, hint: "mount the share or give the right directory")
        }
        return try transaction(check: check) { state in
            let moved = state.modelsDir != nil && (state.modelsDir != models || state.coldStore != cold)
            if moved && !state.placements.isEmpty {
                throw CachectlError.failed(
                    "change the models directory or cold store",
                    hint:
                        "models are placed: \(state.placements.keys.sorted().joined(separator: ", ")); demote them first"
                )
            }
            let configChanged = state.modelsDir != models || state.coldStore != cold
            state.modelsDir = models
            state.coldStore = cold
            if !check { try Path.makeDirectory(models) }
            let catalog = try ModelCatalog.scan(coldStore: cold)
            let links = try syncLinks(catalog: catalog, state: state, check: check)
            return ModelsSetup(
                changed: configChanged || !links.repaired.isEmpty, modelsDir: models, coldStore: cold,
                links: links.repaired)
        }
    }

    /// Every model in the cold store, its size and where it lives.
    public func listModels() throws -> [ModelStatus] {
        let state = try stateFile.load()
        let (modelsDir, coldStore) = try configured(state)
        return try ModelCatalog.scan(coldStore: coldStore).map { model in
            let linked = model.files.allSatisfy { file in
                ModelFiles.linkTarget(modelsDir: modelsDir, relative: file.path)
                    == desiredTarget(for: file.path, state: state)
            }
            return ModelStatus(
                name: model.name, layout: model.layout, bytes: model.bytes, files: model.files.count,
                location: state.placements[model.name]?.tier ?? "cold", pinnedTier: state.pins[model.name],
                linked: linked, problem: model.problem)
        }
    }

    /// Copies a model into a tier and swaps its links there atomically.
    ///
    /// - Parameters:
    ///   - tier: the tier to use; nil lets `strategy` choose (a pinned model goes to its pin).
    ///   - pin: remember the tier, so later placement and `health --restore` use it.
    ///   - progress: draw a progress bar on stderr (only on a tty).
    ///   - observer: told the bytes copied as the copy goes (`cachectl serve`'s jobs).
    public func promote(
        _ name: String, tier: String? = nil, strategy: PlacementStrategy = .fastestFit, pin: Bool = false,
        check: Bool = false, progress: Bool = false, observer: ProgressBar.Observer? = nil
    ) throws -> PlacementChange {
        if let tier { try TierSpec.validateName(tier) }
        let start = Monotonic.now()
        return try transaction(check: check) { state in
            let (modelsDir, coldStore) = try configured(state)
            let model = try findModel(name, coldStore: coldStore)
            if let problem = model.problem {
                throw CachectlError.failed(
                    "promote \(model.name)", path: coldStore, hint: "the model is incomplete: \(problem)")
            }
            let pinned = state.pins[model.name]
            if let pinned, let tier, tier != pinned, !pin {
                throw CachectlError.failed(
                    "promote \(model.name) to \(tier)", hint: "it is pinned to \(pinned); add --pin to move the pin")
            }
            // A placement whose copies are gone (tier wiped) no longer counts.
            if state.placements[model.name] != nil, !placementIntact(model.name, state: state) {
                if check { state.placements[model.name] = nil } else { try demoteModel(model.name, state: &state) }
            }
            let current = state.placements[model.name]?.tier
            var result = PlacementChange(
                changed: false, action: "already placed", model: model.name, layout: model.layout, tier: current,
                from: current, bytes: model.bytes, files: model.files.count, copiedBytes: 0, verifiedBlobs: 0,
                seconds: 0, pinned: pinned != nil || pin, links: model.files.map { modelsDir + "/" + $0.path })

            let wanted = tier ?? pinned
            if let current, wanted == nil || wanted == current {
                if pin && pinned != current {
                    if !check { state.pins[model.name] = current }
                    result.changed = true
                    result.action = check ? "would pin" : "pinned"
                }
                return result
            }

            // Choose the tier.
            let live = state.tiersBySpeed.filter { isLive($0) }
            let snapshot = state
            let copies: (TierRecord) -> [ModelFile] = { record in
                model.files.filter { !self.hasVerifiedCopy($0, in: record, state: snapshot, excluding: nil) }
            }
            let target: TierRecord
            if let wanted {
                guard let record = state.tier(named: wanted) else {
                    throw CachectlError(
                        .notFound, "promote \(model.name)", hint: "no tier named \(wanted); see: cachectl tier list")
                }
                guard isLive(record) else {
                    throw CachectlError.failed(
                        "promote \(model.name) to \(wanted)", path: record.spec.path,
                        hint: "the tier is not mounted; run: cachectl tier health --restore")
                }
                let need = copies(record).reduce(0) { $0 + ModelFiles.footprint($1.size) }
                let free = try SpaceUsage.of(record.spec.path).free
                guard free >= need else {
                    throw CachectlError(
                        "promote \(model.name) to \(wanted)", path: record.spec.path, errno: ENOSPC,
                        hint:
                            "needs \(ByteSize.format(need)), \(ByteSize.format(free)) free; nothing was changed. Demote something or resize the tier"
                    )
                }
                target = record
            } else {
                let candidates = try live.map { record in
                    let need = copies(record).reduce(0) { $0 + ModelFiles.footprint($1.size) }
                    let free = try SpaceUsage.of(record.spec.path).free
                    // Express each tier's fit against the same need: free minus this tier's own need plus the max.
                    return (record, need, free)
                }
                guard !candidates.isEmpty else {
                    throw CachectlError.failed(
                        "promote \(model.name)",
                        hint: "no tier is mounted; create one: cachectl tier create NAME --type tmpfs --size 8G")
                }
                let maxNeed = candidates.map(\.1).max() ?? 0
                let forStrategy = candidates.map { record, need, free in
                    PlacementStrategy.Candidate(
                        name: record.spec.name, rank: record.spec.rank,
                        free: free >= need ? free - need + maxNeed : 0)
                }
                let (index, next) = strategy.choose(need: maxNeed, from: forStrategy, cursor: state.roundRobinNext)
                guard let index else {
                    let frees = candidates.map { "\($0.0.spec.name) \(ByteSize.format($0.2)) free" }.joined(
                        separator: ", ")
                    throw CachectlError(
                        "promote \(model.name)", errno: ENOSPC,
                        hint:
                            "no tier has room for \(ByteSize.format(model.bytes)) (\(frees)); nothing was changed. Demote something, resize or add a tier"
                    )
                }
                if !check { state.roundRobinNext = next }
                target = candidates[index].0
            }

            let toCopy = copies(target)
            result.tier = target.spec.name
            result.pinned = pin || pinned != nil
            result.changed = true
            if check {
                result.action = current == nil ? "would promote" : "would move"
                result.copiedBytes = toCopy.reduce(0) { $0 + $1.size }
                return result
            }

            // 1. Copy everything; nothing visible changes until all copies are whole.
            let tierRoot = target.spec.path
            ModelFiles.staleCopies(tierRoot: tierRoot, remove: true)  // a killed promote's temp files
            let reader = Self.modelsOwner(modelsDir)
            let bar =
                progress || observer != nil
                ? ProgressBar(
                    total: toCopy.reduce(0) { $0 + $1.size }, label: "promote", enabled: progress, observer: observer)
                : nil
            var created: [String] = []
            do {
                for file in toCopy {
                    bar?.setItem(Path.lastComponent(of: file.path))
                    try ModelFiles.copy(
                        from: coldStore + "/" + file.path, tierRoot: tierRoot, relative: file.path,
                        expectedSize: file.size,
                        expectedSHA256: file.sha256, progress: bar, readAs: reader)
                    created.append(file.path)
                    result.copiedBytes += file.size
                    if file.sha256 != nil { result.verifiedBlobs += 1 }
                }
            } catch {
                bar?.finish()
                for path in created { ModelFiles.removeCopy(path, tierRoot: tierRoot) }
                throw error
            }
            bar?.finish()

            // 2. Swap the links, one atomic rename each.
            var swapped: [(link: String, was: String?)] = []
            do {
                for file in model.files {
                    let was = ModelFiles.linkTarget(modelsDir: modelsDir, relative: file.path)
                    if try ModelFiles.pointLink(
                        modelsDir: modelsDir, relative: file.path, to: tierRoot + "/" + file.path)
                    {
                        swapped.append((file.path, was))
                    }
                }
            } catch {
                for (link, was) in swapped.reversed() {
                    if let was {
                        _ = try? ModelFiles.pointLink(modelsDir: modelsDir, relative: link, to: was)
                    } else {
                        ModelFiles.removeLink(modelsDir: modelsDir, relative: link)
                    }
                }
                for path in created { ModelFiles.removeCopy(path, tierRoot: tierRoot) }
                throw error
            }

            // 3. Record it, then drop the copies in the tier it left.
            let old = state.placements[model.name]
            state.placements[model.name] = PlacementRecord(
                tier: target.spec.name, files: model.files.map(\.path), bytes: model.bytes)
            if pin { state.pins[model.name] = target.spec.name }
            if let old, old.tier != target.spec.name, let oldTier = state.tier(named: old.tier) {
                let unused = old.files.filter { path in
                    !state.placements.contains(where: { $0.value.tier == old.tier && $0.value.files.contains(path) })
                }
                ModelFiles.retireCopies(unused, tierRoot: oldTier.spec.path)
            }
            result.action = current == nil ? "promoted" : "moved"
            result.seconds = Monotonic.now() - start
            return result
        }
    }

    /// The links of a model in the models directory (what applications open and
    /// what warming it reads), for a name `listModels()` shows.
    public func links(of name: String) throws -> [String] {
        let state = try stateFile.load()
        let (modelsDir, coldStore) = try configured(state)
        return try findModel(name, coldStore: coldStore).files.map { modelsDir + "/" + $0.path }
    }

    /// Points a model's links back at the cold store, then deletes its copies.
    public func demote(_ name: String, unpin: Bool = false, check: Bool = false) throws -> PlacementChange {
        try transaction(check: check) { state in
            let (_, coldStore) = try configured(state)
            let model = try findModel(name, coldStore: coldStore)
            let current = state.placements[model.name]?.tier
            let wasPinned = state.pins[model.name] != nil
            var result = PlacementChange(
                changed: false, action: "already cold", model: model.name, layout: model.layout, tier: nil,
                from: current, bytes: model.bytes, files: model.files.count, copiedBytes: 0, verifiedBlobs: 0,
                seconds: 0, pinned: wasPinned && !unpin)
            if unpin && wasPinned {
                result.changed = true
                if !check { state.pins[model.name] = nil }
            }
            guard current != nil else {
                if result.changed { result.action = check ? "would unpin" : "unpinned" }
                return result
            }
            result.changed = true
            result.action = check ? "would demote" : "demoted"
            if !check { try demoteModel(model.name, state: &state) }
            return result
        }
    }

    // MARK: - shared steps

    /// The owner of the models directory when it is not root: the user the
    /// links serve, whose rights promote reads the cold store with.
    static func modelsOwner(_ modelsDir: String) -> (uid: uid_t, gid: gid_t)? {
        var st = stat()
        guard stat(modelsDir, &st) == 0, st.st_uid != 0 else { return nil }
        return (st.st_uid, st.st_gid)
    }

    func configured(_ state: TierState) throws -> (modelsDir: String, coldStore: String) {
        guard let modelsDir = state.modelsDir, let coldStore = state.coldStore else {
            throw CachectlError.failed(
                "models", path: stateFile.path,
                hint: "no models directory is set up; run: cachectl models --models-dir DIR --cold-store DIR")
        }
        return (modelsDir, coldStore)
    }

    func findModel(_ name: String, coldStore: String) throws -> Model {
        let catalog = try ModelCatalog.scan(coldStore: coldStore)
        guard let model = ModelCatalog.find(name, in: catalog) else {
            throw CachectlError.failed(
                "find model \(name)", path: coldStore, hint: "not in the cold store; see: cachectl models")
        }
        return model
    }

    /// Where the link for `relative` should point: a tier copy held by a placement
    /// (other than `excluding`), else the cold store.
    func desiredTarget(for relative: String, state: TierState, excluding: String? = nil) -> String {
        for (name, placement) in state.placements.sorted(by: { $0.key < $1.key })
        where name != excluding && placement.files.contains(relative) {
            if let tier = state.tier(named: placement.tier) { return tier.spec.path + "/" + relative }
        }
        return (state.coldStore ?? "") + "/" + relative
    }

    /// A copy in `record` that a placement put there (so it was verified) and is whole.
    func hasVerifiedCopy(_ file: ModelFile, in record: TierRecord, state: TierState, excluding: String?) -> Bool {
        let owned = state.placements.contains { name, placement in
            name != excluding && placement.tier == record.spec.name && placement.files.contains(file.path)
        }
        return owned && ModelFiles.regularFileSize(record.spec.path + "/" + file.path) == file.size
    }

    /// The tier is live and every file of the placement is there.
    func placementIntact(_ name: String, state: TierState) -> Bool {
        guard let placement = state.placements[name], let record = state.tier(named: placement.tier), isLive(record)
        else { return false }
        return placement.files.allSatisfy { ModelFiles.regularFileSize(record.spec.path + "/" + $0) != nil }
    }

    /// Repoints a placed model's links (to cold, or to another placement sharing a
    /// file) and deletes its copies that no other placement uses. Updates `state`.
    func demoteModel(_ name: String, state: inout TierState) throws {
        guard let placement = state.placements[name], let modelsDir = state.modelsDir else { return }
        state.placements[name] = nil
        for path in placement.files {
            let target = desiredTarget(for: path, state: state)
            if target.hasPrefix((state.coldStore ?? "") + "/") && access(target, F_OK) != 0 {
                // The cold file is gone too: a dangling link is worse than none.
                ModelFiles.removeLink(modelsDir: modelsDir, relative: path)
                continue
            }
            try ModelFiles.pointLink(modelsDir: modelsDir, relative: path, to: target)
        }
        // A dead nvmeof tier is left alone (``TierBackend/leavesDeadCopiesAlone``):
        // its copies go with the mount, and touching it only waits for errors.
        guard let tier = state.tier(named: placement.tier),
            !backend(for: tier.spec.type).leavesDeadCopiesAlone || isLive(tier)
        else { return }
        let unused = placement.files.filter { path in
            !state.placements.contains(where: { $0.value.tier == placement.tier && $0.value.files.contains(path) })
        }
        ModelFiles.retireCopies(unused, tierRoot: tier.spec.path)
    }

    /// Makes every model file's link point where the state says; removes links
    /// cachectl made whose target no longer exists.
    func syncLinks(catalog: [Model], state: TierState, check: Bool) throws -> (
        repaired: [LinkRepair], removed: [String]
    ) {
        guard let modelsDir = state.modelsDir, let coldStore = state.coldStore else { return ([], []) }
        var repaired: [LinkRepair] = []
        var wanted = Set<String>()
        for model in catalog {
            for file in model.files {
                let link = modelsDir + "/" + file.path
                let target = desiredTarget(for: file.path, state: state)
                guard access(target, F_OK) == 0 else { continue }  // a missing blob: no link
                wanted.insert(link)
                let was = ModelFiles.linkTarget(modelsDir: modelsDir, relative: file.path)
                guard was != target else { continue }
                if !check { try ModelFiles.pointLink(modelsDir: modelsDir, relative: file.path, to: target) }
                repaired.append(LinkRepair(link: link, target: target, was: was))
            }
        }
        // Dangling links into the cold store or a tier were made by cachectl.
        let owned = [coldStore] + state.tiers.map(\.spec.path)
        var removed: [String] = []
        for link in Self.symlinks(under: modelsDir) where !wanted.contains(link) {
            let relative = String(link.dropFirst(modelsDir.count + 1))
            // A temp link of a pointLink killed before its rename.
            if let pid = ModelFiles.tempLinkOwner(Path.lastComponent(of: link)), !ModelFiles.isLiveCachectl(pid) {
                if !check { ModelFiles.removeLink(modelsDir: modelsDir, relative: relative) }
                removed.append(link)
                continue
            }
            guard let target = ModelFiles.linkTarget(modelsDir: modelsDir, relative: relative),
                access(target, F_OK) != 0,
                owned.contains(where: { target.hasPrefix($0 + "/") })
            else { continue }
            if !check { ModelFiles.removeLink(modelsDir: modelsDir, relative: relative) }
            removed.append(link)
        }
        return (repaired, removed)
    }

    static func symlinks(under dir: String, depth: Int = 0) -> [String] {
        guard depth <= 8, let names = try? Path.entries(of: dir) else { return [] }
        var links: [String] = []
        for name in names {
            let path = dir + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFLNK {
                links.append(path)
            } else if st.st_mode & S_IFMT == S_IFDIR {
                links += symlinks(under: path, depth: depth + 1)
            }
        }
        return links.sorted()
    }
}

extension String {
    func trimmingTrailingSlashes() -> String {
        var s = self
        while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
        return s
    }
}
