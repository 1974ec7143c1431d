import CachectlFSCache
import CachectlMount
import CachectlNVMeOF
import CachectlSystem
import CachectlTiers
import CachectlWarm
import FoundationEssentials
import Glibc

// MARK: - cache

extension Engine {
    /// Compares without calling `CacheSetup` when all is in place, so a second
    /// apply only reads. When something differs, `CacheSetup(check: true)` says what
    /// it would do and refuses a bad cache dir before anything is written.
    func checkCache(_ cache: CachefilesdConfig) throws -> Action {
        let path = environment.cachefilesdConfigPath
        let rendered = try cache.render()
        let current = try? AtomicFile.readText(path)
        let dirExists = Self.isDirectory(cache.dir)
        let pids = CachefilesDaemon.runningPIDs(proc: environment.roots.proc)
        let daemonOK = !environment.manageCacheDaemon || !pids.isEmpty
        let after =
            "\(path) for \(cache.dir) (tag \(cache.tag))"
            + (environment.manageCacheDaemon ? ", cachefilesd running" : "")
        var before: [String] = []
        before.append(current == nil ? "no \(path)" : current == rendered ? "\(path) as wanted" : "\(path) differs")
        if !dirExists { before.append("no \(cache.dir)") }
        if environment.manageCacheDaemon {
            before.append(pids.isEmpty ? "cachefilesd not running" : "cachefilesd running")
        }
        if current == rendered && dirExists && daemonOK {
            return Action(kind: .cache, target: cache.dir, before: before.joined(separator: ", "), after: after)
        }
        let setup = CacheSetup(
            config: cache, configPath: path, check: true, manageDaemon: environment.manageCacheDaemon,
            roots: environment.roots)
        let result = try setup.run()
        return Action(
            kind: .cache, target: cache.dir, before: before.joined(separator: ", "), after: after, changed: true,
            status: .pending,
            steps: result.actions, diff: result.diff.isEmpty ? nil : result.diff,
            notes: result.findings.filter { $0.severity != .ok }.map {
                "\($0.check): \($0.detail)" + ($0.fix.map { " (fix: \($0))" } ?? "")
            })
    }

    /// `CacheSetup` writes the config, then starts cachefilesd. If that fails,
    /// the old config is put back (and the old daemon started again), so the
    /// machine keeps the cache it had.
    func runCache(_ cache: CachefilesdConfig, planned: Action) throws -> Action {
        let path = environment.cachefilesdConfigPath
        let oldText = try? AtomicFile.readText(path)
        let wasRunning = !CachefilesDaemon.runningPIDs(proc: environment.roots.proc).isEmpty
        let setup = CacheSetup(
            config: cache, configPath: path, check: false, manageDaemon: environment.manageCacheDaemon,
            roots: environment.roots)
        do {
            let result = try setup.run()
            var action = planned
            action.changed = result.changed
            action.steps = result.actions
            action.diff = result.diff.isEmpty ? nil : result.diff
            if let daemon = result.daemon { action.notes.append(daemon) }
            if let state = result.cacheState { action.notes.append("cache state: \(state)") }
            return action
        } catch {
            var undone: [String] = []
            let now = try? AtomicFile.readText(path)
            if now != oldText {
                do {
                    if let oldText {
                        try AtomicFile.write(oldText, to: path, mode: 0o644)
                        undone.append("restored \(path)")
                    } else {
                        if unlink(path) != 0 { throw CachectlError("unlink", path: path, errno: errno) }
                        undone.append("removed the new \(path)")
                    }
                } catch {
                    undone.append(
                        "could not restore \(path): \(error) (the old file is \(path)\(AtomicFile.backupSuffix))")
                }
            }
            if environment.manageCacheDaemon, wasRunning,
                CachefilesDaemon.runningPIDs(proc: environment.roots.proc).isEmpty
            {
                do {
                    _ = try CachefilesDaemon.ensureRunning(configPath: path, restart: true, roots: environment.roots)
                    undone.append("started cachefilesd again with the old config")
                } catch {
                    undone.append("cachefilesd did not start with the old config either: \(error)")
                }
            }
            throw ChangeFailure(
                underlying: error, changed: false,
                rollback: undone.isEmpty ? "nothing had changed" : undone.joined(separator: "; "))
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }
}

// MARK: - shares

extension Engine {
    /// `FscSwitch` for one mount. It rolls itself back: a failed mount puts
    /// fstab back and mounts the share again with its old options.
    func runShare(_ share: MachineConfig.Share, check: Bool) throws -> Action {
        let switcher = FscSwitch(
            enable: share.fsc, mountpoints: [share.mountpoint], force: share.force, check: check,
            readahead: share.readahead, nconnect: share.nconnect, rsize: share.rsize, roots: environment.roots)
        let report = try switcher.run()
        guard let mount = report.mounts.first else {
            throw CachectlError.failed("fsc: no report for \(share.mountpoint)")
        }
        let wantedKB = share.readahead.map { $0.bytes / 1024 }
        func describe(fsc: Bool?, readaheadKB: UInt64?, nconnect: Int?, rsize: UInt64?) -> String {
            var text = "fsc " + (fsc.map { $0 ? "on" : "off" } ?? "unknown")
            if let readaheadKB { text += ", readahead \(readaheadKB) KiB" }
            if share.nconnect != nil, let nconnect { text += ", nconnect \(nconnect)" }
            if share.rsize != nil, let rsize { text += ", rsize \(ByteSize.format(rsize))" }
            return text
        }
        let unchanged = check || !mount.changed
        var action = Action(
            kind: .share, target: share.mountpoint,
            before: describe(
                fsc: mount.fscBefore, readaheadKB: unchanged ? mount.readaheadKB : nil,
                nconnect: unchanged ? mount.nconnect : nil, rsize: unchanged ? mount.rsizeBytes : nil),
            after: describe(
                fsc: share.fsc, readaheadKB: wantedKB ?? (check ? mount.readaheadKB : nil),
                nconnect: share.nconnect, rsize: share.rsize?.bytes),
            changed: mount.changed, status: mount.changed ? (check ? .pending : .done) : .unchanged,
            steps: mount.actions, diff: mount.fstabDiff, notes: mount.notes)
        if mount.failed {
            let message = mount.error ?? "fsc \(share.fsc ? "enable" : "disable") failed"
            if check { throw CachectlError.failed(message) }
            let restored = mount.notes.filter { $0.contains("restored") }
            action.notes = mount.notes
            throw ChangeFailure(
                underlying: CachectlError(mount.errorCode ?? .failed, message), changed: mount.changed,
                rollback: (restored + [
                    "FscSwitch mounts the share again with its old options when mounting with fsc fails"
                ]).joined(separator: "; "))
        }
        return action
    }
}

// MARK: - tiers

extension Engine {
    /// `createTier` (idempotent), `resizeTier` when only the size differs,
    /// `destroyTier` (demoting what is placed there) for `state: absent`.
    /// A step that fails is rolled back by the tier library (its change log).
    func runTier(_ tier: MachineConfig.Tier, check: Bool) throws -> Action {
        let state = try environment.tierState.load()
        let existing = state.tier(named: tier.name)
        let live = try tiers.listTiers().first { $0.name == tier.name }?.live ?? false
        let before =
            existing.map {
                "\($0.spec.type.rawValue) \($0.spec.size) at \($0.spec.path)" + (live ? "" : " (not mounted)")
            } ?? "absent"
        let change: TierChange
        let after: String
        switch tier.state {
        case .absent:
            change = try tiers.destroyTier(tier.name, demote: true, check: check)
            after = "absent"
        case .present:
            let spec = tier.spec
            after = "\(spec.type.rawValue) \(spec.size) at \(spec.path), rank \(spec.rank)"
            if let existing, existing.spec.size != spec.size, Self.sameExceptSize(existing.spec, spec) {
                change = try tiers.resizeTier(tier.name, size: spec.size, check: check)
            } else {
                change = try tiers.createTier(spec, check: check)
            }
        }
        var steps = change.steps
        if steps.isEmpty && change.changed { steps = [change.action] }
        if !change.demoted.isEmpty { steps.append("demoted \(change.demoted.joined(separator: ", "))") }
        return Action(
            kind: .tier, target: tier.name, before: before, after: after, changed: change.changed,
            status: change.changed ? (check ? .pending : .done) : .unchanged, steps: steps)
    }

    static func sameExceptSize(_ a: TierSpec, _ b: TierSpec) -> Bool {
        a.type == b.type && a.path == b.path && a.algorithm == b.algorithm && a.filesystem == b.filesystem
    }
}

// MARK: - NVMe-oF

extension Engine {
    /// `NVMeTarget.export`: idempotent, and a failed step undoes the ones before it.
    func runExport(_ export: MachineConfig.NVMeOF.Export, check: Bool) throws -> Action {
        let target = NVMeTarget(roots: environment.roots)
        let existing = target.isLoaded ? (try? target.list())?.first { $0.nqn == export.spec.nqn } : nil
        let before =
            existing.map { status in
                "exported as \(status.nqn)"
                    + (status.ports.first.map {
                        " on \($0.transport ?? "?") \($0.address ?? "")\($0.port.map { ":\($0)" } ?? "")"
                    } ?? "")
            } ?? "absent"
        let change: TargetChange
        let after: String
        switch export.state {
        case .present:
            change = try target.export(export.spec, check: check)
            after =
                "exported as \(export.spec.nqn) (\(export.size)) on \(export.transport.rawValue)"
                + (export.address.map { " \($0)" } ?? "") + (export.port.map { ":\($0)" } ?? "")
        case .absent:
            change = try target.unexport(export.name, check: check)
            after = "absent"
        }
        return Action(
            kind: .nvmeofExport, target: export.name, before: before, after: after, changed: change.changed,
            status: change.changed ? (check ? .pending : .done) : .unchanged, steps: change.steps)
    }

    /// `FabricsHost.connect`: an existing live connection is reused.
    func runConnection(_ connection: MachineConfig.NVMeOF.Connection, check: Bool) throws -> Action {
        let change = try FabricsHost(roots: environment.roots).connect(connection.spec, check: check)
        let at =
            connection.transport.rawValue + (connection.address.map { " \($0)" } ?? "")
            + (connection.port.map { ":\($0)" } ?? "")
        return Action(
            kind: .nvmeofConnection, target: connection.nqn,
            before: change.changed ? "not connected" : "connected" + (change.device.map { " (\($0))" } ?? ""),
            after: "connected over \(at)" + (change.device.map { " (\($0))" } ?? ""), changed: change.changed,
            status: change.changed ? (check ? .pending : .done) : .unchanged,
            steps: change.changed ? [change.action] : [])
    }
}

// MARK: - models and placement

extension Engine {
    func runModels(_ models: MachineConfig.Models, check: Bool) throws -> Action {
        let state = try environment.tierState.load()
        let before =
            state.modelsDir.map { "models dir \($0), cold store \(state.coldStore ?? "-")" } ?? "not configured"
        let setup = try tiers.configureModels(modelsDir: models.dir, coldStore: models.coldStore, check: check)
        return Action(
            kind: .models, target: models.dir, before: before,
            after: "models dir \(setup.modelsDir), cold store \(setup.coldStore)", changed: setup.changed,
            status: setup.changed ? (check ? .pending : .done) : .unchanged,
            steps: setup.links.map { "link \($0.link) → \($0.target)" + ($0.was.map { " (was \($0))" } ?? "") })
    }

    /// `promote` copies, swaps links atomically, and on failure removes its
    /// copies and puts the links back.
    func runPlacement(_ model: String, tier: String?, pin: Bool, strategy: PlacementStrategy, check: Bool) throws
        -> Action
    {
        if check, let models = config.models,
            ModelCatalog.find(model, in: try ModelCatalog.scan(coldStore: models.coldStore)) == nil
        {
            throw MissingReference(description: "no model \(model) in \(models.coldStore); see: cachectl models")
        }
        let change = try tiers.promote(
            model, tier: tier, strategy: strategy, pin: pin, check: check, progress: environment.progress && !check)
        let where_ = { (tier: String?) in tier.map { "in tier \($0)" } ?? "cold" }
        var steps: [String] = []
        if change.changed {
            steps.append(
                check
                    ? "\(change.action) \(change.model) to \(change.tier ?? "?") (\(ByteSize.format(change.copiedBytes)) to copy)"
                    : "\(change.action) \(change.model) to \(change.tier ?? "?"), copied \(ByteSize.format(change.copiedBytes))"
            )
        }
        return Action(
            kind: .placement, target: model, before: where_(change.from),
            after: where_(change.tier) + (pin ? " (pinned)" : ""), changed: change.changed,
            status: change.changed ? (check ? .pending : .done) : .unchanged, steps: steps)
    }
}

// MARK: - warm

extension Engine {
    /// The files of a warm list: its paths, and each model's files reached
    /// through its links in the models directory (so a promoted model is
    /// warmed from its tier, a cold one through the share and FS-Cache).
    /// Before the models directory is set up (a plan on a new machine), a
    /// model's files are planned from the cold store.
    func selection(for list: MachineConfig.WarmList) throws -> FileSelection {
        var paths = list.files
        if !list.models.isEmpty, let models = config.models {
            let catalog = try ModelCatalog.scan(coldStore: models.coldStore)
            for name in list.models {
                guard let model = ModelCatalog.find(name, in: catalog) else {
                    throw MissingReference(
                        description: "warm \(list.name): no model \(name) in \(models.coldStore); see: cachectl models")
                }
                paths += model.files.map { file in
                    let link = models.dir + "/" + file.path
                    var st = stat()
                    return stat(link, &st) == 0 ? link : models.coldStore + "/" + file.path
                }
            }
        }
        return FileSelection(paths: paths, include: list.include, exclude: list.exclude, expandShards: true)
    }

    func checkWarm(_ list: MachineConfig.WarmList) throws -> (action: Action, plan: WarmPlan?, files: [SelectedFile]) {
        let selection = try selection(for: list)
        if let problem = selection.problems.first {
            throw CachectlError.failed("warm \(list.name): \(problem)", hint: "fix the path in the warm list")
        }
        let total = selection.totalSize
        let after =
            "\(ByteSize.format(total)) in \(selection.files.count) file(s) "
            + (list.into == .ram ? "in the page cache" : "in FS-Cache")
        if list.into == .disk {
            // Residency cannot tell what FS-Cache holds; the record of the last warm can.
            let stamps = selection.files.compactMap { FileStamp.of($0.path) }
            let record = environment.warmState.load().lists[list.name]
            if let record, record.into == "disk", Set(record.files) == Set(stamps),
                stamps.count == selection.files.count
            {
                return (
                    Action(
                        kind: .warm, target: list.name, before: "warmed into FS-Cache (files unchanged since)",
                        after: after), nil, selection.files
                )
            }
            return (
                Action(
                    kind: .warm, target: list.name,
                    before: record == nil ? "not warmed" : "files changed since the last warm", after: after,
                    changed: true, status: .pending,
                    steps: ["read \(ByteSize.format(total)) through FS-Cache, dropping pages behind"]),
                nil, selection.files
            )
        }
        let plan = Prewarmer(options: list.options).plan(selection.files)
        if let failure = plan.results.first(where: { $0.error != nil }) {
            throw CachectlError.failed("warm \(list.name): \(failure.path): \(failure.error ?? "")")
        }
        let resident = plan.results.reduce(0) { $0 + $1.bytesAlreadyResident }
        let before = "\(ByteSize.format(resident)) of \(ByteSize.format(total)) resident"
        guard plan.bytesToRead > 0 else {
            return (Action(kind: .warm, target: list.name, before: before, after: after), plan, selection.files)
        }
        return (
            Action(
                kind: .warm, target: list.name, before: before, after: after, changed: true, status: .pending,
                steps: ["read \(ByteSize.format(plan.bytesToRead)) into the page cache with \(plan.readers) reader(s)"]),
            plan, selection.files
        )
    }

    /// Reads what is missing, then records the run (throughput for metrics, file
    /// stamps for `into: disk`). Warming changes no file: nothing to roll back.
    func runWarm(_ list: MachineConfig.WarmList) throws -> Action {
        var (action, plan, files) = try checkWarm(list)
        if environment.warmInUnits {
            let unit = "cachectl-warm@\(list.name).service"
            try ExternalCommand(["systemctl", "start", "--no-block", unit])
                .check(hint: "is the unit installed? cachectl install-units")
            action.steps = ["queued \(unit) (systemctl start --no-block)"]
            return action
        }
        let prewarmer = Prewarmer(options: list.options)
        let bar = ProgressBar(
            total: plan?.bytesToRead ?? files.reduce(0) { $0 + $1.size }, label: "warm \(list.name)",
            enabled: environment.progress)
        let report = prewarmer.run(plan ?? prewarmer.plan(files), progress: bar)
        bar.finish()
        action.changed = report.bytesRead > 0 || list.into == .disk
        action.steps = [
            "read \(ByteSize.format(report.bytesRead)) in \(formatFixed(report.seconds, digits: 2)) s (\(ByteSize.formatRate(bytes: report.bytesRead, seconds: report.seconds)))"
        ]
        if let percent = report.residencyPercent, list.into == .ram {
            action.notes.append("\(formatFixed(percent, digits: 1))% resident")
        }
        if report.failedFiles > 0 {
            let failures = report.files.compactMap { file in file.error.map { "\(file.path): \($0)" } }
            throw ChangeFailure(
                underlying: CachectlError.failed(
                    "warm \(list.name): \(report.failedFiles) file(s) failed: " + failures.joined(separator: "; ")),
                changed: report.bytesRead > 0, rollback: "nothing to roll back: warming only reads")
        }
        let record = WarmRecord(
            finishedAt: Date().timeIntervalSince1970, into: list.into.rawValue, bytesRead: report.bytesRead,
            totalBytes: report.totalSize, seconds: report.seconds, throughput: report.throughput,
            residencyPercent: report.residencyPercent, files: files.compactMap { FileStamp.of($0.path) })
        do {
            try environment.warmState.record(list.name, record)
        } catch {
            action.notes.append("could not record the warm in \(environment.warmState.path): \(error)")
        }
        return action
    }
}
