import ArgumentParser
import CachectlSystem
import FoundationEssentials
import Glibc

@main
struct Cachectl: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "cachectl",
        abstract: "Make network-stored AI models load at local speed with the kernel's own caches.",
        discussion: """
            cachectl configures FS-Cache for NFS/CIFS model shares, RAM tiers (tmpfs, zram, \
            NVMe-oF), and pre-warms model files into the page cache. It serves no bytes itself.

            Every command takes --json (one JSON document on stdout with changed, failed, msg \
            and the command's data; logs go to stderr). Commands that change the system take \
            --check (change nothing, say what would change) and are idempotent.

            Exit status: 0 success, 1 failure (some work may be done: see the report), 2 usage error.

            Shell completions: cachectl --generate-completion-script bash|zsh|fish
            """,
        version: version,
        subcommands: [
            Warm.self, Residency.self, Evict.self,
            Cache.self, Mounts.self, Fsc.self, Doctor.self,
            Tier.self, Models.self, Promote.self, Demote.self,
            Fuse.self,
            Nvmet.self,
            Apply.self, Plan.self, Status.self, InstallUnits.self, Serve.self,
        ]
    )

    /// Parses, runs, and maps every outcome to the documented exit status:
    /// 0 success, 1 failure, 2 usage error.
    static func main() {
        // `cachectl --version` alone is answered before argument-parser builds the command
        // tree and reflects on GenerateCompletions' options (a quarter of the start-up
        // CPU): the same string, from the same configuration. Anything else, including
        // --version beside other arguments, goes through the parser.
        if CommandLine.arguments.count == 2, CommandLine.arguments[1] == "--version" {
            StandardStream.output.write(configuration.version + "\n")
            Glibc.exit(0)
        }
        let wantsJSON = CommandLine.arguments.dropFirst().contains("--json")
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }  // --help, --version
            report(usageError: fullMessage(for: error), json: wantsJSON)
            Glibc.exit(2)
        }
        do {
            try command.run()
        } catch let failure as ReportedFailure {
            Glibc.exit(failure.code.exitStatus)
        } catch let error as ValidationError {
            // Thrown by a command's run(): the message names the option; no usage block.
            report(usageError: "cachectl: error: \(error.message)", json: wantsJSON)
            Glibc.exit(2)
        } catch let error as CachectlError {
            // The code alone decides the status: usage 2, any other failure 1.
            CommandOutput.reportFailure(error, json: wantsJSON)
            Glibc.exit(error.code.exitStatus)
        } catch {
            switch exitCode(for: error) {
            case .success:  // help requested for a subcommand
                exit(withError: error)
            case .validationFailure:
                report(usageError: fullMessage(for: error), json: wantsJSON)
                Glibc.exit(2)
            default:
                CommandOutput.reportFailure(String(describing: error), json: wantsJSON)
                Glibc.exit(1)
            }
        }
    }

    private static func report(usageError message: String, json: Bool) {
        if json {
            CommandOutput.printJSON(Envelope(changed: false, failed: true, msg: message, data: NoData()))
        }
        StandardStream.error.write(message.hasSuffix("\n") ? message : message + "\n")
    }
}
