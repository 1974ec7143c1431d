import CachectlSystem
import Glibc

/// Turns FS-Cache on or off for NFS/CIFS mounts: `fsc` in fstab, the mount
/// made again with it, and the kernel's word that it took effect.
///
/// A remount cannot do it: NFS refuses to change `fsc` on remount
/// (`nfs_compare_remount_data()` in fs/nfs/super.c returns EINVAL), so the
/// share is unmounted and mounted again. If mounting again fails, the old
/// fstab is put back and the share is mounted with its old options: it is
/// never left unmounted by choice.
public struct FscSwitch: Sendable {
    public var enable: Bool
    /// Mount points; empty with `all` means every NFS/CIFS mount.
    public var mountpoints: [String]
    public var all: Bool
    /// Unmount even when processes use the mount (they see errors or stale handles).
    public var force: Bool
    /// Change nothing; report what would change.
    public var check: Bool
    /// Also set the mount's readahead window.
    public var readahead: ByteSize?
    /// TCP connections to the server (`nconnect=`), set in the same unmount and mount.
    public var nconnect: Int?
    /// Bytes per READ request (`rsize=`), set in the same unmount and mount.
    public var rsize: ByteSize?
    public var roots: KernelRoots
    /// Other filesystem types to accept, for tests that exercise the unmount,
    /// mount and rollback path on tmpfs (no server there, so no probe).
    var testFilesystems: Set<String> = []

    public init(
        enable: Bool, mountpoints: [String], all: Bool = false, force: Bool = false, check: Bool = false,
        readahead: ByteSize? = nil, nconnect: Int? = nil, rsize: ByteSize? = nil, roots: KernelRoots = .system
    ) {
        self.enable = enable
        self.mountpoints = mountpoints
        self.all = all
        self.force = force
        self.check = check
        self.readahead = readahead
        self.nconnect = nconnect
        self.rsize = rsize
        self.roots = roots
    }

    /// Accepted `nconnect` values: NFS and CIFS both allow at most 16 connections.
    public static let nconnectRange = 1...16
    /// Accepted `rsize` values (a multiple of 4 KiB). NFS clients read at most
    /// 1 MiB per request; CIFS takes up to 8 MiB.
    public static let rsizeRange: ClosedRange<UInt64> = 4096...(8 << 20)
    static let nfsMaxRsize: UInt64 = 1 << 20

    /// What happened (or, with `check`, would happen) to one mount.
    public struct MountReport: Sendable, Codable, Equatable {
        public var mountpoint: String
        public var fstype: String?
        public var source: String?
        public var changed = false
        public var failed = false
        /// Steps done, in order (with `check`: the steps it would do).
        public var actions: [String] = []
        public var fscBefore: Bool?
        public var fscAfter: Bool?
        public var fstabChanged = false
        public var remounted = false
        public var readaheadKB: UInt64?
        /// `nconnect` and `rsize` of the mount: before the change (with `check`, or
        /// when nothing changed) or after it.
        public var nconnect: Int?
        public var rsizeBytes: UInt64?
        /// Processes that keep the mount busy.
        public var busy: [MountUser] = []
        public var notes: [String] = []
        public var error: String?
        /// The kind of failure (`usage` for a value this mount cannot take).
        public var errorCode: CachectlError.Code?
        /// Unified diff of fstab (before → after): the changed entry only, secrets masked.
        public var fstabDiff: String?

        /// The report with every secret option value masked (``MountSecrets``):
        /// what leaves the process as text, JSON or a plan's diff.
        public func redacted() -> MountReport {
            var copy = self
            copy.source = source.map(MountSecrets.redact)
            copy.actions = actions.map(MountSecrets.redact)
            copy.notes = notes.map(MountSecrets.redact)
            copy.error = error.map(MountSecrets.redact)
            copy.fstabDiff = fstabDiff.map(MountSecrets.redact)
            return copy
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var changed: Bool
        public var failed: Bool
        public var mounts: [MountReport]
    }

    /// Validates the request before touching anything.
    public func validate() throws(CachectlError) {
        if mountpoints.isEmpty && !all {
            throw CachectlError.usage(nil, "fsc: no mount point given", hint: "name one or more mount points, or all")
        }
        if let readahead, readahead.bytes < 4096 || readahead.bytes > 1 << 30 {
            throw CachectlError.usage(
                ["readahead"], "readahead \(readahead) out of range", hint: "use 4K...1G, e.g. 16M")
        }
        if let nconnect, !Self.nconnectRange.contains(nconnect) {
            throw CachectlError.usage(["nconnect"], "nconnect \(nconnect) out of range", hint: "use 1...16, e.g. 4")
        }
        if let rsize, !Self.rsizeRange.contains(rsize.bytes) || rsize.bytes % 4096 != 0 {
            throw CachectlError.usage(
                ["rsize"], "rsize \(rsize) out of range",
                hint: "use a multiple of 4K up to 1M for NFS (8M for CIFS), e.g. 1M")
        }
    }

    public func run() throws(CachectlError) -> Report {
        try validate()
        var targets = mountpoints.map { normalizedMountPoint(Path.absolute($0)) }
        if all {
            let mounted = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")
            for entry in mounted where entry.isNetworkShare && !targets.contains(entry.target) {
                targets.append(entry.target)
            }
        }
        let reports = targets.map { switchOne($0) }
        return Report(
            changed: reports.contains(where: \.changed), failed: reports.contains(where: \.failed), mounts: reports)
    }

    private var fstabPath: String { roots.etc + "/fstab" }

    private func switchOne(_ target: String) -> MountReport {
        var report = MountReport(mountpoint: target)
        var heldSignal: Int32?
        let fstabBefore = check ? nil : try? AtomicFile.readText(fstabPath)
        do {
            if check {
                try switchOne(target, &report, heldSignal: &heldSignal)
            } else {
                // Read-modify-write of fstab and the remount under fstab's lock:
                // two runs on different entries never lose each other's edit.
                try FstabFile.withLock(fstabPath) { () throws(CachectlError) in
                    try switchOne(target, &report, heldSignal: &heldSignal)
                }
            }
        } catch {
            report.failed = true
            report.error = error.description
            report.errorCode = error.code
        }
        // systemd generates a .mount unit from each fstab entry: without a reload
        // it keeps the old options (and warns the unit changed on disk).
        if !check, fstabBefore != (try? AtomicFile.readText(fstabPath)), Systemd.isRunning(proc: roots.proc) {
            do {
                try Systemd.reload()
                report.notes.append("reloaded systemd (systemctl daemon-reload): the share's mount unit follows fstab")
            } catch {
                report.notes.append("fstab changed but systemctl daemon-reload failed: \(error)")
            }
        }
        // A SIGTERM/SIGINT/SIGHUP that came during the remount takes effect now
        // that the step is finished or rolled back.
        DeferredSignals.deliver(heldSignal)
        return report.redacted()
    }

    private func switchOne(_ target: String, _ report: inout MountReport, heldSignal: inout Int32?)
        throws(CachectlError)
    {
        let verb = enable ? "enable" : "disable"
        let mounted = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")
        guard let mount = MountTable.mount(at: target, in: mounted) else {
            let fstab = try FstabFile(path: fstabPath)
            if let entry = pendingMount(target, mounted: mounted, fstab: fstab.entries) {
                try finishPendingMount(entry, &report, heldSignal: &heldSignal)
                return
            }
            throw CachectlError.failed(
                "fsc \(verb): nothing is mounted on", path: target,
                hint: "mount the share first (see `cachectl mounts`)")
        }
        report.fstype = mount.fstype
        report.source = mount.source
        let isTestFilesystem = testFilesystems.contains(mount.fstype)
        guard let kind = NetworkFilesystem(fstype: mount.fstype) ?? (isTestFilesystem ? .nfs : nil) else {
            throw CachectlError.failed(
                "fsc \(verb): \(target) is \(mount.fstype), not NFS or CIFS", path: nil,
                hint: "FS-Cache backs only NFS and CIFS mounts")
        }
        let fscBefore = Self.fscOn(mount, volumes: NFSVolume.read(proc: roots.proc))
        report.fscBefore = fscBefore
        let tuningBefore = Self.tuning(of: mount)
        report.nconnect = tuningBefore.nconnect
        report.rsizeBytes = tuningBefore.rsize
        if kind == .nfs, let rsize, rsize.bytes > Self.nfsMaxRsize {
            throw CachectlError.usage(
                ["rsize"], "rsize \(rsize) is more than an NFS client reads per request (1M)",
                hint: "use 1M or less for NFS")
        }

        let fstab = try FstabFile(path: fstabPath)
        let entry = fstab.entry(forTarget: target)
        if kind == .cifs { try checkCIFSSecrets(entry, target: target, &report) }

        // Several superblocks of one export, each with fsc, would share a cache
        // volume key; NFS then needs fsc=UNIQ to tell them apart.
        let volumes = NFSVolume.read(proc: roots.proc)
        let siblings = mounted.filter {
            $0.target != mount.target && $0.source == mount.source && $0.device != mount.device && $0.isNetworkShare
        }
        let needsUnique =
            kind == .nfs && enable
            && (siblings.contains { Self.fscOn($0, volumes: volumes) }
                || (!siblings.isEmpty && OptionString.contains(entry?.options ?? mount.options, "nosharecache")))
        func switchedFsc(_ options: String) -> String {
            guard enable else { return OptionString.removing(options, "fsc") }
            if OptionString.contains(options, "fsc") { return options }
            if needsUnique {
                let unique = "cachectl" + target.map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
                return OptionString.setting(options, "fsc", to: unique)
            }
            return OptionString.setting(options, "fsc")
        }
        func switched(_ options: String) -> String { tuned(switchedFsc(options)) }

        let newFstabOptions = entry.map { switched($0.options) }
        let fstabNeedsChange = entry != nil && newFstabOptions != entry?.options
        // Also when only the fstab entry lacks them: the mount made from it must have them.
        let tuningChanges = !tuningMatches(tuningBefore) || entry.map { tuned($0.options) != $0.options } ?? false
        let remountNeeded = fscBefore != enable || tuningChanges
        let oldMountOptions = entry?.options ?? Self.liveOptions(mount, kind: kind)
        let newMountOptions = switched(oldMountOptions)
        let wantedReadaheadKB = readahead.map { $0.bytes / 1024 }
        let readaheadNeedsChange = wantedReadaheadKB != nil

        if needsUnique && !OptionString.contains(entry?.options ?? "", "fsc") {
            report.notes.append(
                "another mount of \(mount.source) already uses FS-Cache: using fsc=UNIQ so their cache volumes differ")
        }
        if entry == nil && (remountNeeded || !enable) {
            report.notes.append(
                "no fstab entry for \(target): mounting it again with its current options \(enable ? "plus" : "minus") fsc; this does not last past a reboot unless fstab says so"
            )
        }

        // The plan, named in the report even when a check below stops it.
        var fstabStep: String?
        var remountStep: String?
        var readaheadStep: String?
        var fstabDiff = ""
        if fstabNeedsChange, let newFstabOptions {
            fstab.setOptions(newFstabOptions, forTarget: target)
            fstabDiff = fstab.diff()
            report.fstabDiff = fstabDiff.isEmpty ? nil : fstabDiff
            var edits: [String] = []
            if let old = entry?.options, OptionString.contains(old, "fsc") != enable {
                edits.append(enable ? "add fsc" : "remove fsc")
            }
            let settings = [nconnect.map { "nconnect=\($0)" }, rsize.map { "rsize=\($0.bytes)" }].compactMap { $0 }
                .filter { !OptionString.split(entry?.options ?? "").contains($0) }
            if !settings.isEmpty { edits.append("set " + settings.joined(separator: ",")) }
            fstabStep =
                "\(edits.joined(separator: " and ")) in the fstab entry (backup \(fstabPath)\(AtomicFile.backupSuffix))"
        }
        if remountNeeded {
            remountStep = "unmount \(target) and mount it again with \(OptionString.redacted(newMountOptions))"
        }
        var readaheadChanges = false
        if let wantedReadaheadKB, let device = mount.device {
            let current = Readahead.kilobytes(for: device, sys: roots.sys)
            report.readaheadKB = current
            readaheadChanges = current != wantedReadaheadKB || remountNeeded
            if readaheadChanges { readaheadStep = "set readahead to \(wantedReadaheadKB) KiB" }
        }
        report.actions = [fstabStep, remountStep, readaheadStep].compactMap { $0 }
        guard fstabNeedsChange || remountNeeded || (readaheadNeedsChange && readaheadChanges) else {
            report.fscAfter = fscBefore
            return
        }

        if remountNeeded && !isTestFilesystem {
            // Once unmounted, a share whose server is gone cannot come back: check first.
            try requireServer(
                source: mount.source, fstype: mount.fstype, options: entry?.options ?? mount.options, kind: kind,
                target: target, hint: "left \(target) mounted and fstab unchanged; run again when the server answers")
        }
        if remountNeeded && !force {
            report.busy = BusyScan.users(of: target, device: mount.device, proc: roots.proc)
            if !report.busy.isEmpty {
                throw CachectlError.failed(
                    "fsc \(verb): \(target) is busy: " + report.busy.map(\.description).joined(separator: "; "),
                    hint: "stop those processes (or leave their directories), then run again; --force unmounts anyway")
            }
        }
        // The steps go through the log: a check records them and does nothing.
        let log = ChangeLog(check: check)
        let steps = Steps(fstab: fstabStep, remount: remountStep, readahead: readaheadStep)
        if check {
            try apply(
                mount, kind: kind, fstab: fstab, steps: steps, fscBefore: fscBefore, oldMountOptions: oldMountOptions,
                newMountOptions: newMountOptions, wantedReadaheadKB: wantedReadaheadKB, log: log, &report)
            report.changed = log.changed
        } else {
            // From the fstab rename to the mount made again (or rolled back), a
            // SIGTERM/SIGINT waits: the step finishes instead of leaving the share unmounted.
            let (result, signal) = DeferredSignals.run { () throws(CachectlError) in
                try apply(
                    mount, kind: kind, fstab: fstab, steps: steps, fscBefore: fscBefore,
                    oldMountOptions: oldMountOptions,
                    newMountOptions: newMountOptions, wantedReadaheadKB: wantedReadaheadKB, log: log, &report)
            }
            heldSignal = signal
            try result.get()
        }
        report.actions = log.reported
    }

    /// The steps of one switch, as the report names them; nil: not needed.
    private struct Steps {
        var fstab: String?
        var remount: String?
        var readahead: String?
    }

    /// The changing part of ``switchOne``: fstab, unmount, mount, verify, each a
    /// step of `log`. A failed mount is rolled back here (fstab entry, old mount),
    /// and the error says what that did.
    private func apply(
        _ mount: MountEntry, kind: NetworkFilesystem, fstab: FstabFile, steps: Steps, fscBefore: Bool,
        oldMountOptions: String, newMountOptions: String, wantedReadaheadKB: UInt64?, log: ChangeLog,
        _ report: inout MountReport
    ) throws(CachectlError) {
        let verb = enable ? "enable" : "disable"
        let target = mount.target
        if let step = steps.fstab {
            try log.perform(step) { () throws(CachectlError) in
                try fstab.write()
                report.fstabChanged = true
                report.changed = true
            }
        }
        guard let remountStep = steps.remount else {
            if !log.check { report.fscAfter = fscBefore }
            if let step = steps.readahead, let wantedReadaheadKB, let device = mount.device {
                try log.perform(step) { () throws(CachectlError) in
                    try Readahead.set(kilobytes: wantedReadaheadKB, for: device, sys: roots.sys)
                    report.readaheadKB = wantedReadaheadKB
                    report.changed = true
                }
            }
            return
        }
        // A window set by hand (or an earlier run) lasts only until the next
        // mount: keep it unless a new one is asked for.
        let readaheadBefore = mount.device.flatMap { Readahead.kilobytes(for: $0, sys: roots.sys) }
        var newDevice: DeviceNumber?
        try log.perform(remountStep) { () throws(CachectlError) in
            try remount(mount, from: oldMountOptions, to: newMountOptions, fstab: fstab, &report)
            let after = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")
            guard let remounted = MountTable.mount(at: target, in: after) else {
                throw CachectlError.failed("fsc \(verb): \(target) is not in mountinfo after mounting it again")
            }
            let fscAfter = Self.fscOn(remounted, volumes: NFSVolume.read(proc: roots.proc))
            report.fscAfter = fscAfter
            let tuningAfter = Self.tuning(of: remounted)
            report.nconnect = tuningAfter.nconnect
            report.rsizeBytes = tuningAfter.rsize
            if nconnect != nil, tuningAfter.nconnect == nil {
                report.notes.append(
                    "this \(remounted.fstype) mount does not show nconnect in mountinfo: set, not checked")
            }
            var wrong: CachectlError?
            if fscAfter != enable {
                wrong = CachectlError.failed(
                    "fsc \(verb): \(target) was mounted again but FS-Cache is still \(fscAfter ? "on" : "off")",
                    hint: Self.stillWrongHint(
                        enable: enable, kind: kind, uniqueTag: OptionString.value(newMountOptions, "fsc") ?? nil))
            } else if !tuningMatches(tuningAfter) {
                wrong = tuningWrongError(tuningAfter, mount: remounted, verb: verb)
            }
            if let wrong {
                try rollBack(
                    remounted, to: oldMountOptions, readaheadKB: readaheadBefore, fstab: fstab, after: wrong, &report)
            }
            newDevice = remounted.device
            if wantedReadaheadKB == nil, let kept = readaheadBefore, let device = remounted.device {
                if try Readahead.set(kilobytes: kept, for: device, sys: roots.sys) {
                    report.notes.append("kept the readahead window of \(kept) KiB across the new mount")
                }
                report.readaheadKB = kept
            }
        }
        if let step = steps.readahead, let wantedReadaheadKB {
            try log.perform(step) { () throws(CachectlError) in
                guard let device = newDevice else { return }
                try Readahead.set(kilobytes: wantedReadaheadKB, for: device, sys: roots.sys)
                report.readaheadKB = wantedReadaheadKB
            }
        }
    }

    /// `nconnect` (1 when the mount does not say) and `rsize` of a live mount, as
    /// the kernel reports them in mountinfo's superblock options.
    static func tuning(of mount: MountEntry) -> (nconnect: Int?, rsize: UInt64?) {
        let options = mount.superOptions ?? mount.options
        let nconnect = (OptionString.value(options, "nconnect") ?? nil).flatMap { Int($0) }
        let rsize = (OptionString.value(options, "rsize") ?? nil).flatMap { UInt64($0) }
        return (nconnect ?? (NetworkFilesystem(fstype: mount.fstype) == .nfs ? 1 : nil), rsize)
    }

    /// True when the mount already has every `nconnect`/`rsize` that was asked. A
    /// value the kernel does not show (nconnect of a CIFS mount: not in its options)
    /// cannot be checked and counts as taken.
    func tuningMatches(_ live: (nconnect: Int?, rsize: UInt64?)) -> Bool {
        (nconnect == nil || live.nconnect == nil || live.nconnect == nconnect)
            && (rsize == nil || live.rsize == rsize?.bytes)
    }

    /// The options with the asked `nconnect` and `rsize` set.
    func tuned(_ options: String) -> String {
        var result = options
        if let nconnect { result = OptionString.setting(result, "nconnect", to: String(nconnect)) }
        if let rsize { result = OptionString.setting(result, "rsize", to: String(rsize.bytes)) }
        return result
    }

    /// Why the new mount does not have the asked `nconnect`/`rsize`. An NFS
    /// client shares one set of connections among every mount of a server: a
    /// mount of it elsewhere keeps the count it was made with.
    private func tuningWrongError(_ live: (nconnect: Int?, rsize: UInt64?), mount: MountEntry, verb: String)
        -> CachectlError
    {
        if let nconnect, live.nconnect != nconnect {
            let (server, _) = NetworkMounts.splitSource(mount.source, fstype: mount.fstype)
            let others = ((try? MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")) ?? [])
                .filter {
                    $0.target != mount.target && $0.isNetworkShare
                        && NetworkMounts.splitSource($0.source, fstype: $0.fstype).0 == server
                }
                .map(\.target)
            return CachectlError.failed(
                "fsc \(verb): \(mount.target) was mounted with nconnect=\(nconnect) but the kernel uses \(live.nconnect.map(String.init) ?? "its default")",
                hint: others.isEmpty
                    ? "this kernel's client did not take nconnect for this server"
                    : "the NFS client shares one set of connections per server, and \(others.joined(separator: ", ")) keeps the count it was mounted with: give those mounts the same nconnect, or unmount them first"
            )
        }
        return CachectlError.failed(
            "fsc \(verb): \(mount.target) was mounted with rsize=\(rsize?.bytes ?? 0) but the kernel uses \(live.rsize.map(String.init) ?? "its default")",
            hint:
                "the server grants at most \(live.rsize.map { ByteSize.format($0) } ?? "less") per READ: ask for that rsize or less"
        )
    }

    /// The new mount is not what was asked: put the fstab entry back, mount the
    /// share again with its old options, and throw `failure` with what was done.
    private func rollBack(
        _ mount: MountEntry, to oldOptions: String, readaheadKB: UInt64?, fstab: FstabFile,
        after failure: CachectlError,
        _ report: inout MountReport
    ) throws(CachectlError) {
        var outcome: String
        Self.restoreEntry(of: mount.target, in: fstab, &report)
        do {
            try Mounter.unmount(mount.target)
            try Mounter.mount(source: mount.source, target: mount.target, fstype: mount.fstype, options: oldOptions)
            outcome = "mounted \(mount.target) again with its old options"
            if let readaheadKB,
                let device = MountTable.mount(
                    at: mount.target, in: (try? MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")) ?? [])?
                    .device
            {
                _ = try? Readahead.set(kilobytes: readaheadKB, for: device, sys: roots.sys)
            }
            report.remounted = false
            report.changed = report.fstabChanged
            report.fscAfter = report.fscBefore
        } catch {
            outcome =
                "putting the old mount back failed (\(error.hint ?? error.description)); check `mount \(mount.target)`"
        }
        var error = failure
        error.hint = (failure.hint.map { $0 + "; " } ?? "") + outcome
        throw error
    }

    /// What to do when the kernel did not follow the remount's fsc setting.
    static func stillWrongHint(enable: Bool, kind: NetworkFilesystem, uniqueTag: String?) -> String {
        guard enable else { return "another mount of the same export may share its superblock; disable fsc there too" }
        if let uniqueTag {
            // Seen on Debian's 6.1 (NFSv4.2, two nosharecache mounts of one export):
            // the volume key the kernel logs lacks the tag, and the second mount
            // gets no cache volume. 6.12 keeps the tag in the key.
            return
                "another mount of this export with the same options holds its cache volume, and this kernel's NFS client left fsc=\(uniqueTag) out of the volume key (dmesg: \"NFS: Cache volume key already in use\"; seen on 6.1 with NFSv4, not on 6.12): here only one such mount can use FS-Cache; mount the export once, or give this mount different options"
        }
        let name = kind == .nfs ? "NFS" : "CIFS"
        return "this kernel's \(name) client may lack FS-Cache support (CONFIG_\(name)_FSCACHE); see `cachectl doctor`"
    }

    /// Unmount, mount with `newOptions`; on failure put fstab back and mount with `oldOptions`.
    private func remount(
        _ mount: MountEntry, from oldOptions: String, to newOptions: String, fstab: FstabFile,
        _ report: inout MountReport
    ) throws(CachectlError) {
        func restoreFstab() { Self.restoreEntry(of: mount.target, in: fstab, &report) }
        do {
            try Mounter.unmount(mount.target)
        } catch {
            restoreFstab()
            report.changed = report.fstabChanged
            if error.errno == EBUSY {
                report.busy = BusyScan.users(of: mount.target, device: mount.device, proc: roots.proc)
            }
            throw error
        }
        report.changed = true
        do {
            try Mounter.mount(source: mount.source, target: mount.target, fstype: mount.fstype, options: newOptions)
            report.remounted = true
        } catch let failure {
            restoreFstab()
            // The mount helper's reason once (in failure's hint), then what was done about it.
            var outcome: String
            do {
                try Mounter.mount(source: mount.source, target: mount.target, fstype: mount.fstype, options: oldOptions)
                outcome = "mounted \(mount.target) again with its old options"
                // Back where it started: nothing changed unless fstab could not be restored.
                report.changed = report.fstabChanged
            } catch {
                outcome =
                    "mounting with the old options failed too (\(error.hint ?? error.description)): \(mount.target) is NOT mounted, run `mount \(mount.target)` once the server answers"
            }
            var error = failure
            error.hint = (failure.hint.map { $0 + "; " } ?? "") + outcome
            throw error
        }
    }

    /// When this run changed `target`'s fstab entry: puts it back and says so in the
    /// report (or says where the old file is, if that fails).
    static func restoreEntry(of target: String, in fstab: FstabFile, _ report: inout MountReport) {
        guard report.fstabChanged else { return }
        do {
            try revertEntry(of: target, in: fstab)
            report.fstabChanged = false
            report.notes.append("restored \(fstab.path) to what it was")
        } catch {
            report.notes.append(
                "could not restore \(fstab.path): \(error); the old file is \(fstab.path)\(AtomicFile.backupSuffix)")
        }
    }

    /// Puts the options of `target`'s entry back to what they were before
    /// `edited`'s change, reading the file again (under the lock) so any other
    /// entry's change made since stays.
    static func revertEntry(of target: String, in edited: FstabFile) throws(CachectlError) {
        guard let before = FstabFile.entryOptions(in: edited.originalBytes, forTarget: target),
            let wrote = FstabFile.entryOptions(in: edited.bytes, forTarget: target)
        else { return }
        let now = try FstabFile(path: edited.path)
        guard FstabFile.entryOptions(in: now.bytes, forTarget: target) == wrote else { return }
        now.setOptions(before, forTarget: target)
        try now.write(backup: false)
    }

    /// A share an earlier run left unmounted. The order of a switch is fstab
    /// first, then unmount, then mount: a run killed (SIGKILL, power loss)
    /// after the unmount leaves fstab already saying what was asked and
    /// nothing mounted. That entry is returned, to be mounted from fstab;
    /// nil when something is mounted, there is no entry, or the entry does not
    /// say what was asked (then it is not cachectl's half-done work).
    func pendingMount(_ target: String, mounted: [MountEntry], fstab: [MountEntry]) -> MountEntry? {
        guard MountTable.mount(at: target, in: mounted) == nil else { return nil }
        let wanted = normalizedMountPoint(target)
        guard let entry = fstab.first(where: { normalizedMountPoint($0.target) == wanted }),
            entry.isNetworkShare || testFilesystems.contains(entry.fstype),
            OptionString.contains(entry.options, "fsc") == enable
        else { return nil }
        return entry
    }

    /// Once unmounted, a share whose server is gone cannot come back: the
    /// server must answer on its port (the mount's `port=`, else 2049/445) first.
    private func requireServer(
        source: String, fstype: String, options: String, kind: NetworkFilesystem, target: String, hint: String
    ) throws(CachectlError) {
        let (server, _) = NetworkMounts.splitSource(source, fstype: fstype)
        let portOption = OptionString.value(options, "port") ?? nil
        let port = portOption.flatMap { UInt16($0) }.flatMap { $0 == 0 ? nil : $0 } ?? (kind == .nfs ? 2049 : 445)
        if let reason = ServerProbe.unreachableReason(host: server, port: port) {
            throw CachectlError.failed(
                "fsc \(enable ? "enable" : "disable"): server of \(target) is unreachable (\(reason))", hint: hint)
        }
    }

    /// Mounts a share left unmounted by an interrupted run, from its fstab
    /// entry, and checks FS-Cache is what was asked.
    private func finishPendingMount(_ entry: MountEntry, _ report: inout MountReport, heldSignal: inout Int32?)
        throws(CachectlError)
    {
        let verb = enable ? "enable" : "disable"
        let target = normalizedMountPoint(entry.target)
        let kind = NetworkFilesystem(fstype: entry.fstype) ?? .nfs
        report.fstype = entry.fstype
        report.source = entry.source
        report.notes.append(
            "nothing is mounted on \(target) but its fstab entry already \(enable ? "has" : "lacks") fsc: an earlier run stopped after unmounting it"
        )
        let step = "mount \(target) from its fstab entry (\(OptionString.redacted(entry.options)))"
        report.actions = [step]
        if !testFilesystems.contains(entry.fstype) {
            try requireServer(
                source: entry.source, fstype: entry.fstype, options: entry.options, kind: kind,
                target: target,
                hint: "\(target) is not mounted; run again (or `mount \(target)`) when the server answers")
        }
        let log = ChangeLog(check: check)
        try log.perform(step) { () throws(CachectlError) in
            let (result, signal) = DeferredSignals.run { () throws(CachectlError) in
                try Mounter.mount(source: entry.source, target: target, fstype: entry.fstype, options: entry.options)
            }
            heldSignal = signal
            try result.get()
        }
        report.actions = log.reported
        report.changed = true
        if check { return }
        report.remounted = true
        let after = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")
        guard let mounted = MountTable.mount(at: target, in: after) else {
            throw CachectlError.failed("fsc \(verb): \(target) is not in mountinfo after mounting it from fstab")
        }
        let fscAfter = Self.fscOn(mounted, volumes: NFSVolume.read(proc: roots.proc))
        report.fscAfter = fscAfter
        if fscAfter != enable {
            throw CachectlError.failed(
                "fsc \(verb): \(target) was mounted from fstab but FS-Cache is \(fscAfter ? "on" : "off")")
        }
        if let wanted = readahead.map({ $0.bytes / 1024 }), let device = mounted.device {
            try Readahead.set(kilobytes: wanted, for: device, sys: roots.sys)
            report.readaheadKB = wanted
        }
    }

    /// FS-Cache state of a live mount: NFS's volumes table, else the superblock option.
    static func fscOn(_ mount: MountEntry, volumes: [NFSVolume]) -> Bool {
        if NetworkFilesystem(fstype: mount.fstype) == .nfs, let device = mount.device,
            let volume = volumes.first(where: { $0.device == device })
        {
            return volume.fsc
        }
        return OptionString.contains(mount.superOptions ?? mount.options, "fsc")
    }

    /// The options of a live mount as mount(8) would take them back: VFS plus
    /// superblock options, without the ones the kernel reports but mount.nfs
    /// computes itself (`addr`, `clientaddr`) or that are not options (`seclabel`).
    static func liveOptions(_ mount: MountEntry, kind: NetworkFilesystem) -> String {
        var seen = Set<String>()
        var result: [String] = []
        let dropped: Set<String> = kind == .nfs ? ["addr", "clientaddr", "seclabel"] : ["seclabel"]
        for item in OptionString.split(mount.vfsOptions ?? "") + OptionString.split(mount.superOptions ?? "") {
            let name = String(item.split(separator: "=", maxSplits: 1).first ?? "")
            guard !dropped.contains(name), seen.insert(name).inserted else { continue }
            result.append(item)
        }
        return result.joined(separator: ",")
    }

    /// CIFS passwords belong in a credentials file (mode 0600), never in fstab
    /// or in cachectl's output; and without fstab cachectl has no credentials to mount with.
    private func checkCIFSSecrets(_ entry: MountEntry?, target: String, _ report: inout MountReport)
        throws(CachectlError)
    {
        guard let entry else {
            throw CachectlError.failed(
                "fsc: \(target) is a CIFS mount with no fstab entry", path: nil,
                hint:
                    "cachectl cannot mount it again without its credentials: add an fstab line with credentials=/etc/cachectl/NAME.cred (mode 0600)"
            )
        }
        if MountSecrets.containsSecret(entry.options) {
            throw CachectlError.failed(
                "fsc: the fstab entry for \(target) holds a password (a password=, pass= or password2= option, or a password after % in username=)",
                path: fstabPath,
                hint: "move it into a credentials file (username=, password= lines; chmod 600) and use credentials=FILE"
            )
        }
        let credentials = OptionString.value(entry.options, "credentials") ?? OptionString.value(entry.options, "cred")
        if case .some(.some(let file)) = credentials {
            var st = stat()
            if stat(file, &st) != 0 {
                throw CachectlError(
                    "fsc: CIFS credentials file", path: file, errno: errno,
                    hint: "create it (username=, password= lines) with mode 0600")
            }
            if st.st_mode & 0o077 != 0 {
                report.notes.append(
                    "credentials file \(file) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))): chmod 600 \(file)"
                )
            }
        }
    }
}
