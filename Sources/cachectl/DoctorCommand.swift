import ArgumentParser
import CachectlFSCache
import CachectlSystem

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the whole FS-Cache chain and say how to fix what is wrong.",
        discussion: """
            Checks, in order: FS-Cache and the cachefiles module in the kernel, the cachefilesd \
            config, the daemon, the cache bound and active, the cache directory (local \
            filesystem, user xattrs, free space and files against the thresholds, SELinux \
            label), every NFS/CIFS mount with or without FS-Cache (and fsc in fstab), and NFS \
            readahead. Each finding prints with the command that fixes it.

            Exit status: 0 when nothing is an error, 1 otherwise (warnings do not fail).

            Examples:
              cachectl doctor
              cachectl doctor --json | jq '.findings[] | select(.severity != "ok")'
            """
    )

    @Option(help: "cachefilesd config to read.") var config: String = "/etc/cachefilesd.conf"
    @OptionGroup var output: OutputOptions

    struct Report: Encodable { var findings: [Finding] }

    func run() throws {
        output.bootstrap()
        let findings = CachectlFSCache.Doctor.examine(configPath: config)
        let errors = findings.filter { $0.severity == .error }.count
        let warnings = findings.filter { $0.severity == .warning }.count
        let msg = errors == 0 && warnings == 0 ? "FS-Cache chain healthy" : "\(errors) error(s), \(warnings) warning(s)"
        try CommandOutput.finish(output, changed: false, failed: errors > 0, msg: msg, data: Report(findings: findings))
        {
            (findings.map(findingLine) + [msg]).joined(separator: "\n")
        }
    }
}
