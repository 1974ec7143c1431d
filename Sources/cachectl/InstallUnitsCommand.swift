import ArgumentParser
import CachectlPlan
import CachectlSystem
import FoundationEssentials
import Glibc

struct InstallUnits: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-units",
        abstract: "Write cachectl's systemd units: apply at boot, warm a list, a FUSE mirror.",
        discussion: """
            Writes, from the templates built into this binary, only the units that differ \
            (atomically), then runs systemctl daemon-reload when systemd runs:

              cachectl-apply.service   apply FILE at boot, after network-online, remote-fs and
                                       the shares FILE names (RequiresMountsFor=); it does not
                                       hold multi-user.target back, and hands warm lists to
                                       cachectl-warm@NAME (started without waiting)
              cachectl-warm@.service   warm one list of FILE: systemctl start cachectl-warm@boot
              cachectl-fuse@.service   a FUSE mirror from FUSE_DIR/NAME.env (SOURCE=, MOUNTPOINT=, OPTIONS=)
              cachectl-serve.service   the web page and API on 127.0.0.1:5050 (cachectl serve)

            It enables nothing; then: systemctl enable cachectl-apply.service
            Run it again after adding a share to FILE (RequiresMountsFor= follows the shares).

            Examples:
              cachectl install-units
              cachectl install-units --check --diff
              cachectl install-units --binary /usr/bin/cachectl --config /etc/cachectl/site.yaml
            """)

    @Option(help: ArgumentHelp("Unit directory.", valueName: "dir")) var dir = "/etc/systemd/system"
    @Option(help: ArgumentHelp("The cachectl binary the units run (default: this one).", valueName: "path")) var binary:
        String?
    @Option(help: ArgumentHelp("The YAML file the units apply.", valueName: "file")) var config = MachineConfig
        .defaultPath
    @Option(help: ArgumentHelp("Directory of the FUSE mirrors' NAME.env files.", valueName: "dir")) var fuseDir =
        "/etc/cachectl/fuse"
    @Flag(help: "Change nothing; report what would change.") var check = false
    @Flag(help: "Show the diffs of the unit files.") var diff = false
    @OptionGroup var output: OutputOptions

    struct Data: Encodable {
        var units: [UnitFiles.Unit]
        var reloaded: Bool
    }

    func run() throws {
        output.bootstrap()
        let exe =
            binary
            ?? ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? "/usr/local/bin/cachectl")
        let configPath = Path.absolute(config)
        let files = UnitFiles(
            directory: Path.absolute(dir), binary: exe, config: configPath, fuseDirectory: Path.absolute(fuseDir),
            mounts: UnitFiles.shareMounts(inConfig: configPath), check: check)
        try files.validate()
        if !check, let problem = Self.privilegeProblem(files.directory) {
            throw CachectlError.failed("install-units", path: files.directory, hint: problem)
        }
        let result = try files.install()
        let changed = result.units.filter(\.changed).map(\.name)
        let msg =
            changed.isEmpty
            ? "units up to date in \(files.directory)"
            : (check ? "would write " : "wrote ") + changed.joined(separator: ", ")
                + (result.reloaded ? (check ? "; would reload systemd" : "; reloaded systemd") : "")
        let units =
            diff
            ? result.units
            : result.units.map { unit in
                var unit = unit
                unit.diff = ""
                return unit
            }
        try CommandOutput.finish(
            output, changed: result.changed, failed: false, msg: msg,
            data: Data(units: units, reloaded: result.reloaded)
        ) {
            ([msg] + (diff ? result.units.map(\.diff).filter { !$0.isEmpty } : [])).joined(separator: "\n")
        }
    }

    /// Checked before anything is created: without root, the unit directory (or,
    /// when it does not exist yet, its nearest existing parent) must be writable by
    /// this user, so a run that would fail half-way fails before its first write.
    static func privilegeProblem(_ directory: String) -> String? {
        guard !Privileges.isRoot else { return nil }
        var existing = directory
        var st = stat()
        while existing != "/" && stat(existing, &st) != 0 { existing = Path.directory(of: existing) }
        guard access(existing, W_OK | X_OK) != 0 else { return nil }
        return
            "\(existing) is not writable by this user (uid \(getuid())); run as root, or use --check to see what would change"
    }
}
