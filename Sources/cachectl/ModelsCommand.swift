import ArgumentParser
import CachectlSystem
import CachectlTiers
import CachectlWarm
import FoundationEssentials
import Glibc

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the models in the cold store, their size and where each lives.",
        discussion: """
            The models directory is what applications read (OLLAMA_MODELS, a llama.cpp \
            models dir); it holds only symlinks, into the cold store (often a network share, \
            never written to) or into a RAM tier. Give both once; they are remembered in the \
            state file, and every cold model is linked into the models directory.

            Layouts found: single .gguf files; shard sets name-00001-of-00004.gguf (one model); \
            ollama stores (manifests/registry.ollama.ai/library/NAME/TAG + blobs/sha256-...; \
            the model is NAME:TAG); Hugging Face directories (config.json + *.safetensors).

            Examples:
              cachectl models --models-dir /srv/models --cold-store /mnt/nfs/models
              cachectl models --json
            """)

    @Option(help: "Directory applications read models from (holds symlinks only).") var modelsDir: String?
    @Option(help: "Directory where the models really are; cachectl never writes there.") var coldStore: String?
    @Flag(help: "Change nothing; report what would change.") var check = false
    @OptionGroup var state: TierStateOptions
    @OptionGroup var output: OutputOptions

    struct Data: Encodable {
        var setup: ModelsSetup?
        var models: [ModelStatus]
    }

    func run() throws {
        output.bootstrap()
        var setup: ModelsSetup?
        if modelsDir != nil || coldStore != nil {
            guard let modelsDir, let coldStore else {
                throw ValidationError("give --models-dir and --cold-store together")
            }
            setup = try state.tiers.configureModels(modelsDir: modelsDir, coldStore: coldStore, check: check)
        }
        let models = try state.tiers.listModels()
        let changed = setup?.changed ?? false
        let msg =
            "\(models.count) model(s)"
            + (changed ? (check ? ", would link \(setup!.links.count)" : ", linked \(setup!.links.count)") : "")
        try CommandOutput.finish(
            output, changed: changed, failed: false, msg: msg, data: Data(setup: setup, models: models)
        ) {
            var rows = [["MODEL", "LAYOUT", "SIZE", "FILES", "LOCATION", "NOTE"]]
            for m in models {
                var note: [String] = []
                if let pin = m.pinnedTier { note.append("pinned to \(pin)") }
                if !m.linked { note.append("link out of date: run cachectl tier health") }
                if let problem = m.problem { note.append(problem) }
                rows.append([
                    m.name, m.layout.rawValue, ByteSize.format(m.bytes), String(m.files), m.location,
                    note.joined(separator: "; "),
                ])
            }
            return (changed ? msg + "\n" : "") + (models.isEmpty ? "no models in the cold store" : formatTable(rows))
        }
    }
}

struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Copy a model into a RAM tier and switch its links there atomically.",
        discussion: """
            The files are copied into the tier (ollama blobs are checked against their sha256 \
            names while copying), fsynced, and only then is each link in the models directory \
            replaced (a new symlink renamed over the old), so a program opening the model at \
            any moment gets the whole old file or the whole new one. If no tier has room, \
            nothing is changed.

            Placement when --tier is not given: fastest-fit (the fastest tier with room; \
            default), fill-first (the fullest tier that still fits), round-robin (the next \
            tier in turn). A pinned model always goes to its tier.

            Examples:
              cachectl promote llama3:8b
              cachectl promote Qwen2.5-7B-Instruct --tier fast --pin
              cachectl promote mixtral-00001-of-00004.gguf --strategy fill-first --check
              cachectl promote llama3:8b --tier squeezed --warm

            --warm then makes sure the model is in the page cache, reading through its links \
            what is not resident (as `cachectl warm` does), and reports residency. Right after \
            a copy the pages are usually still cached; a tmpfs copy is always in RAM.
            """)

    @Argument(help: "Model name as `cachectl models` shows it (ollama NAME:TAG; a .gguf file name works too).")
    var model: String
    @Option(help: "Tier to use (default: chosen by --strategy).") var tier: String?
    @Option(help: "fastest-fit, fill-first or round-robin.") var strategy: PlacementStrategy = .fastestFit
    @Flag(help: "Pin the model to the tier it goes to.") var pin = false
    @Flag(help: "Then warm the model's files into the page cache.") var warm = false
    @Flag(help: "Change nothing; report what would change.") var check = false
    @OptionGroup var state: TierStateOptions
    @OptionGroup var output: OutputOptions

    struct Data: Encodable {
        var placement: PlacementChange
        var warm: WarmReport?

        func encode(to encoder: Encoder) throws {
            try placement.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encodeIfPresent(warm, forKey: .warm)
        }
        private enum Keys: String, CodingKey { case warm }
    }

    func run() throws {
        output.bootstrap()
        let change = try state.tiers.promote(
            model, tier: tier, strategy: strategy, pin: pin, check: check, progress: output.showsProgress)
        var warmed: WarmReport?
        if warm && !check {
            let files = FileSelection(paths: change.links, expandShards: false)
            let bar = ProgressBar(total: files.totalSize, label: "warm", enabled: output.showsProgress)
            warmed = Prewarmer().warm(files.files, progress: bar)
            bar.finish()
        }
        let warmFailed = (warmed?.failedFiles ?? 0) > 0
        let msg =
            "\(change.model): \(change.action)" + (change.tier.map { " (\($0))" } ?? "")
            + (warmFailed ? "; warming failed for \(warmed!.failedFiles) file(s)" : "")
        try CommandOutput.finish(
            output, changed: change.changed, failed: warmFailed, msg: msg, data: Data(placement: change, warm: warmed)
        ) {
            let warmText =
                warmed.map {
                    "\nwarmed \(ByteSize.format($0.bytesRead)) (\(ByteSize.format($0.bytesAlreadyResident)) already resident)"
                        + ($0.residencyPercent.map { ", \(formatFixed($0, digits: 1))% resident" } ?? "")
                } ?? ""
            guard change.changed, change.copiedBytes > 0, !check else { return msg + warmText }
            return msg
                + "\ncopied \(ByteSize.format(change.copiedBytes)) in \(formatFixed(change.seconds, digits: 1)) s"
                + " (\(ByteSize.formatRate(bytes: change.copiedBytes, seconds: change.seconds)))"
                + (change.verifiedBlobs > 0 ? ", \(change.verifiedBlobs) blob(s) sha256-verified" : "") + warmText
        }
    }
}

struct Demote: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demote",
        abstract: "Point a model's links back at the cold store, then delete its tier copy.",
        discussion: """
            The links are switched first (atomically), so readers never see a missing file; \
            the copy is deleted after. A pinned model stays pinned unless --unpin.

            Example: cachectl demote llama3:8b --unpin
            """)

    @Argument(help: "Model name.") var model: String
    @Flag(help: "Also remove the model's pin.") var unpin = false
    @Flag(help: "Change nothing; report what would change.") var check = false
    @OptionGroup var state: TierStateOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        output.bootstrap()
        let change = try state.tiers.demote(model, unpin: unpin, check: check)
        let msg = "\(change.model): \(change.action)" + (change.from.map { " (from \($0))" } ?? "")
        try CommandOutput.finish(output, changed: change.changed, failed: false, msg: msg, data: change) { msg }
    }
}
