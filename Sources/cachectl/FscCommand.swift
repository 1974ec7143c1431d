import ArgumentParser
import CachectlMount
import CachectlSystem

struct Fsc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsc",
        abstract: "Turn FS-Cache on or off for NFS/CIFS mounts (the fsc option).",
        discussion: """
            NFS refuses to change fsc on a remount (EINVAL), so cachectl adds or removes fsc in \
            fstab (only that entry's options change; written atomically, old file kept as \
            fstab.cachectl.bak, readable by its owner only), unmounts the share and mounts it \
            again, then checks the kernel's FSC column in /proc/fs/nfsfs/volumes. If mounting \
            again fails, it restores the entry and mounts the share with its old options. \
            The whole step holds the fstab lock (flock on /etc/fstab.lock); SIGTERM and SIGINT \
            wait until it is finished or rolled back. A share an interrupted run left unmounted, \
            whose fstab entry already says what is asked, is mounted from fstab. Passwords in \
            options and diffs are shown as ***.

            Examples:
              cachectl fsc enable /mnt/models
              cachectl fsc enable --all --readahead 16M --check --diff
              cachectl fsc enable --nconnect 4 --rsize 1M /mnt/models
              cachectl fsc disable /mnt/models

            --nconnect and --rsize go into the same fstab entry and the same unmount and \
            mount; the new mount is checked in mountinfo, and if the kernel did not take \
            them (an NFS client shares its connections among every mount of one server) \
            the entry and the old mount are put back. A readahead window set earlier is \
            kept across the new mount.
            """,
        subcommands: [FscEnable.self, FscDisable.self]
    )
}

struct FscSwitchOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("Mount points of NFS or CIFS shares.", valueName: "mountpoint"))
    var mountpoints: [String] = []
    @Flag(help: "Every NFS and CIFS mount.") var all = false
    @Flag(help: "Unmount even when processes use the share (they may see errors).") var force = false
    @Option(
        help: ArgumentHelp("Also set the mount's readahead window, e.g. 16M (NFS starts at 128K).", valueName: "size"))
    var readahead: ByteSize?
    @Option(
        help: ArgumentHelp(
            "TCP connections to the server, 1-16 (nconnect=); set in the same unmount and mount.", valueName: "n"))
    var nconnect: Int?
    @Option(help: ArgumentHelp("Bytes per READ request (rsize=), e.g. 1M; NFS reads at most 1M.", valueName: "size"))
    var rsize: ByteSize?
    @Flag(help: "Change nothing; report what would change.") var check = false
    @Flag(help: "Show the fstab change as a unified diff.") var diff = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if mountpoints.isEmpty && !all { throw ValidationError("name one or more mount points, or use --all") }
        if !mountpoints.isEmpty && all { throw ValidationError("use either mount points or --all, not both") }
    }

    func run(enable: Bool) throws {
        output.bootstrap()
        let request = FscSwitch(
            enable: enable, mountpoints: mountpoints, all: all, force: force, check: check, readahead: readahead,
            nconnect: nconnect, rsize: rsize)
        var report = try request.run()
        let verb = enable ? "enabled" : "disabled"
        let changedCount = report.mounts.filter(\.changed).count
        let failedMounts = report.mounts.filter(\.failed)
        var msg: String
        if !failedMounts.isEmpty {
            msg = failedMounts.map { $0.error ?? "\($0.mountpoint) failed" }.joined(separator: "; ")
        } else if report.mounts.isEmpty {
            msg = "no NFS or CIFS mounts"
        } else if check {
            msg = changedCount == 0 ? "nothing to change" : "would change \(changedCount) mount(s)"
        } else {
            msg =
                changedCount == 0
                ? "FS-Cache already \(verb) on \(report.mounts.count) mount(s)"
                : "FS-Cache \(verb) on \(changedCount) mount(s)"
        }
        if !diff { for i in report.mounts.indices { report.mounts[i].fstabDiff = nil } }
        // Exit 2 when every failure is a value these mounts cannot take (rsize over NFS's 1M).
        let code: CachectlError.Code =
            !failedMounts.isEmpty && failedMounts.allSatisfy { $0.errorCode == .usage } ? .usage : .failed
        try CommandOutput.finish(
            output, changed: report.changed, failed: report.failed, code: code, msg: msg, data: report
        ) {
            var lines: [String] = []
            for m in report.mounts {
                if let d = m.fstabDiff { lines.append(d) }
                var state = m.fscAfter.map { $0 ? "FSC yes" : "FSC no" } ?? "-"
                if nconnect != nil, let n = m.nconnect { state += ", nconnect \(n)" }
                if rsize != nil, let r = m.rsizeBytes { state += ", rsize \(ByteSize.format(r))" }
                lines.append(
                    "\(m.mountpoint): \(m.failed ? "FAILED" : m.changed ? (check ? "would change" : "changed") : "ok") (\(state))"
                )
                for action in m.actions { lines.append("  \(action)") }
                for note in m.notes { lines.append("  note: \(note)") }
                for user in m.busy { lines.append("  busy: \(user)") }
                if let error = m.error { lines.append("  error: \(error)") }
            }
            lines.append(msg)
            return lines.joined(separator: "\n")
        }
    }
}

struct FscEnable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Add fsc to NFS/CIFS mounts: fstab, unmount, mount again, verify FSC yes.",
        discussion: """
            Refuses a busy mount (open files, working directories or mmaps under it) and names \
            the processes, unless --force. A mount with no fstab entry is mounted again with its \
            current options plus fsc (and cachectl says so). When another mount of the same \
            export already uses FS-Cache, fsc=UNIQ keeps their cache volumes apart. CIFS \
            passwords must live in a credentials file (mode 0600), never in fstab.

            Examples:
              cachectl fsc enable /mnt/models
              cachectl fsc enable --all --readahead 16M
            """
    )
    @OptionGroup var options: FscSwitchOptions
    func run() throws { try options.run(enable: true) }
}

struct FscDisable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Remove fsc from NFS/CIFS mounts: fstab, unmount, mount again, verify FSC no.",
        discussion: """
            Examples:
              cachectl fsc disable /mnt/models
              cachectl fsc disable --all --check --diff
            """
    )
    @OptionGroup var options: FscSwitchOptions
    func run() throws { try options.run(enable: false) }
}
