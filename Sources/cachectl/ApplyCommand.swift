import ArgumentParser
import CachectlPlan
import CachectlSystem
import CachectlTiers
import FoundationEssentials
import Glibc

/// Options `apply` and `plan` share: the file, the section filter, state paths.
struct DesiredStateOptions: ParsableArguments {
    @Option(name: [.short, .customLong("file")], help: ArgumentHelp("The YAML file.", valueName: "file"))
    var file: String = MachineConfig.defaultPath

    @Option(
        help: ArgumentHelp(
            "Only this section (cache, shares, tiers, models, nvmeof, warm), or one entry: warm:NAME, tiers:NAME (repeatable). A warm list with on_apply: false runs only when named.",
            valueName: "section[:name]"))
    var only: [String] = []

    @OptionGroup var state: MachineStateOptions

    /// Reads and validates the file; bad input exits 2 with every problem and its line:column.
    func engine(progress: Bool, json: Bool, warmInUnits: Bool = false) throws -> Engine {
        let filter = try ActionFilter(parsing: only)
        let loaded: ConfigFile
        do {
            loaded = try ConfigFile.load(file)
        } catch {
            // Every problem with its line:column, as one usage error.
            throw CachectlError(.usage, error.description)
        }
        var environment = state.environment
        environment.progress = progress
        environment.warmInUnits = warmInUnits
        return Engine(config: loaded.config, file: file, environment: environment, filter: filter)
    }
}

/// The report as JSON: file diffs only with --diff.
struct PlanData: Encodable {
    var report: PlanReport
    var showDiff: Bool

    enum Keys: String, CodingKey { case file, check, actions }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(report.file, forKey: .file)
        try c.encode(report.check, forKey: .check)
        let actions =
            showDiff
            ? report.actions
            : report.actions.map { action in
                var action = action
                action.diff = nil
                return action
            }
        try c.encode(actions, forKey: .actions)
    }
}

/// The report for people: one line per action, the steps under it.
func describe(_ report: PlanReport, diff: Bool, verbose: Bool) -> String {
    var lines: [String] = []
    for (index, action) in report.actions.enumerated() {
        let mark: String =
            switch action.status {
            case .unchanged: "ok"
            case .pending: "change"
            case .done: "changed"
            case .failed: "FAILED"
            case .skipped: "skipped"
            }
        guard action.status != .unchanged || verbose else { continue }
        var line = "\(index + 1). [\(mark)] \(action.id)"
        if !action.before.isEmpty || !action.after.isEmpty {
            line +=
                action.changed || action.status == .pending
                ? ": \(action.before) → \(action.after)" : ": \(action.after)"
        }
        lines.append(line)
        for step in action.steps where action.status != .unchanged { lines.append("     - " + step) }
        for note in action.notes { lines.append("     note: " + note) }
        if let error = action.error { lines.append("     error: " + error) }
        if let rollback = action.rollback { lines.append("     rollback: " + rollback) }
        if diff, let text = action.diff {
            lines.append(
                text.split(separator: "\n", omittingEmptySubsequences: false).map { "     " + $0 }.joined(
                    separator: "\n"))
        }
    }
    return (lines + [report.summary]).joined(separator: "\n")
}

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Bring the machine to the state one YAML file describes: cache, shares, tiers, models, warm lists.",
        discussion: """
            Reads FILE (default \(MachineConfig.defaultPath)), rejects unknown keys and wrong \
            types with their line and column, and checks every value with the rules of the \
            single commands (cache setup, fsc enable, tier create, promote, warm). Then it \
            plans: each action is asked, without changing anything, whether it is already \
            done. Nothing is changed if any action fails that check.

            Order: the FS-Cache cache, then fsc on shares, RAM tiers, NVMe-oF, the models \
            directory, placements (pinned, then promoted), warm lists last. The first \
            failure stops apply; that action's partial work is rolled back and the rest \
            are reported skipped. A second apply reports changed: false and changes nothing.

            See `cachectl plan` for the plan alone, and integration/examples/cachectl.yaml \
            for a documented file. Exit status: 0 done, 1 an action failed, 2 the file is invalid.

            Examples:
              cachectl apply                                  # /etc/cachectl/cachectl.yaml
              cachectl apply -f site.yaml --check --diff      # what would change, with file diffs
              cachectl apply --only warm:boot                 # one warm list (cachectl-warm@boot)
              cachectl apply --json                           # for Ansible and scripts
              cachectl apply --warm-in-units                  # what cachectl-apply.service runs at boot
            """)

    @OptionGroup var desired: DesiredStateOptions
    @Flag(
        help: ArgumentHelp(
            "Start each warm list that needs reading as cachectl-warm@NAME.service (systemctl start --no-block) instead of reading here.",
            discussion:
                "cachectl-apply.service uses this, so apply at boot ends in seconds and warming never holds boot back.")
    )
    var warmInUnits = false
    @Flag(help: "Change nothing; report what would change (same as `cachectl plan`).") var check = false
    @Flag(help: "Show the diffs of the files that change (cachefilesd.conf, fstab).") var diff = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        output.bootstrap()
        let engine = try desired.engine(progress: output.showsProgress, json: output.json, warmInUnits: warmInUnits)
        let report = check ? engine.plan() : engine.apply()
        try CommandOutput.finish(
            output, changed: report.changed, failed: report.failed, msg: report.summary,
            data: PlanData(report: report, showDiff: diff)
        ) { describe(report, diff: diff, verbose: output.verbose > 0) }
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the ordered actions `apply` would take, with the state before and after. Changes nothing.",
        discussion: """
            The same as `cachectl apply --check`: every action of FILE in dependency order, \
            whether it would change (and how: before → after, and the steps), and file diffs \
            with --diff. An action that needs an earlier one done first (a promote into a tier \
            not created yet) is shown as a change and checked again when apply gets to it.

            Examples:
              cachectl plan -f /etc/cachectl/cachectl.yaml
              cachectl plan --diff -v                         # also the actions already done
            """)

    @OptionGroup var desired: DesiredStateOptions
    @Flag(help: "Show the diffs of the files that would change.") var diff = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        output.bootstrap()
        let report = try desired.engine(progress: false, json: output.json).plan()
        try CommandOutput.finish(
            output, changed: report.changed, failed: report.failed, msg: report.summary,
            data: PlanData(report: report, showDiff: diff)
        ) { describe(report, diff: diff, verbose: true) }
    }
}
