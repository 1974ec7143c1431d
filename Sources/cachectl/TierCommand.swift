import ArgumentParser
import CachectlNVMeOF
import CachectlPlan
import CachectlSystem
import CachectlTiers
import FoundationEssentials
import Glibc

/// Where tier and placement state lives; shared by tier, models, promote, demote.
struct TierStateOptions: ParsableArguments {
    @Option(
        name: .customLong("state"),
        help: ArgumentHelp(
            "State file for tiers and placement (default \(TierStateFile.defaultPath), or $\(TierStateFile.environmentVariable)).",
            valueName: "file"))
    var statePath: String?

    var tiers: RAMTiers { RAMTiers(stateFile: TierStateFile.resolve(statePath), remotes: FabricsTierLink()) }
}

/// Ends a tier command: `tier NAME: ACTION` and the steps taken, one a line.
func finish(_ change: TierChange, tier name: String, _ output: OutputOptions) throws {
    let msg = "tier \(name): \(change.action)"
    try CommandOutput.finish(output, changed: change.changed, failed: false, msg: msg, data: change) {
        ([msg] + change.steps.map { "  " + $0 }).joined(separator: "\n")
    }
}

struct Tier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tier",
        abstract: "Create, list, resize, destroy and repair RAM tiers (tmpfs, zram, nvmeof).",
        discussion: """
            A tier is RAM that holds model copies: tmpfs (fastest, uncompressed) or zram \
            (compressed; a filesystem on a zram block device). Models are placed in tiers with \
            `cachectl promote`. Tiers and placement are recorded in one state file, so \
            `cachectl tier health --restore` can rebuild them after a reboot.

            Examples:
              cachectl tier create fast --type tmpfs --size 16G
              cachectl tier create squeezed --type zram --size 32G --algorithm lz4 --rank 20
              cachectl tier list
              cachectl tier health --restore
            """,
        subcommands: [Create.self, List.self, Resize.self, Destroy.self, Health.self],
        defaultSubcommand: List.self
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Create a tier (idempotent; mounts a recorded tier again after a reboot).",
            discussion: """
                tmpfs: mounts tmpfs with size=SIZE,mode=0755 (nosuid,nodev,noatime).
                zram: hot-adds a device (/sys/class/zram-control/hot_add), sets the algorithm \
                before disksize, makes the filesystem (ext4 without journal, or xfs) and mounts \
                it with discard, so deleted copies give their memory back. Any failed step is \
                undone. The default mount point is /run/cachectl/tiers/NAME.

                Rank orders tiers for placement: lower is faster (default tmpfs 10, zram 20).

                Examples:
                  cachectl tier create fast --type tmpfs --size 16G
                  cachectl tier create big --type zram --size 48G --algorithm zstd --fs ext4 --check
                  cachectl tier create remote --type nvmeof --device /dev/nvme1n1
                  cachectl tier create remote --type nvmeof --nqn nqn.2014-08.org.cachectl:lend --addr 10.0.0.5

                nvmeof: a filesystem on an NVMe-over-Fabrics namespace (see cachectl nvmet), mounted \
                with discard so deleted copies give the target's RAM back; default rank 30. \
                cachectl refuses devices that are not fabrics namespaces, as it makes a new \
                filesystem on them. With --nqn and --addr (or --transport loop) the tier names its \
                export: it connects (reconnect_delay=2, fast_io_fail_tmo=5, ctrl_loss_tmo=30, so \
                readers get an error about 10 s after the target goes away instead of hanging), \
                `tier health --restore` connects again, and `tier destroy` demotes, unmounts and \
                disconnects.
                """)

        @Argument(help: "Tier name: a-z, 0-9, - and _.") var name: String
        @Option(help: "What backs the tier.") var type: TierType
        @Option(help: "Size: 16G, 512M (K/M/G/T are 1024-based); nvmeof: the device's size unless given.") var size:
            String?
        @Option(help: "Mount point (default /run/cachectl/tiers/NAME).") var path: String?
        @Option(help: "zram compression algorithm (lz4, zstd, lzo-rle, ...; default: the kernel's).") var algorithm:
            String?
        @Option(name: .customLong("fs"), help: "zram and nvmeof filesystem: ext4 (default) or xfs.") var filesystem:
            TierFilesystem?
        @Option(help: "Speed rank for placement; lower is faster.") var rank: Int?
        @OptionGroup var nvmeof: NVMeOFTierOptions
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var state: TierStateOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            if type == .nvmeof, let remote = nvmeof.remote {
                // Everything checked before connecting: the connection is the first change.
                let probe = TierSpec(
                    name: name, type: type, size: size.flatMap { ByteSize(parsing: $0) } ?? TierSpec.minimumSize,
                    path: path.map { Path.absolute($0) }, filesystem: filesystem, rank: rank, remote: remote)
                try probe.validate()
            }
            let device = type == .nvmeof ? try nvmeof.resolveDevice(check: check) : nvmeof.device
            guard
                let bytes = size.map({ ByteSize(parsing: $0) })
                    ?? device.flatMap({ NVMeTarget.blockDeviceSize($0) }).map(ByteSize.init)
            else {
                throw ValidationError(
                    size.map { "not a size: \($0) (examples: 16G, 512M)" }
                        ?? (check && nvmeof.remote != nil
                            ? "--size is required with --check while the export is not connected (its size is the namespace's)"
                            : "--size is required"))
            }
            let spec = TierSpec(
                name: name, type: type, size: bytes, path: path.map { Path.absolute($0) }, algorithm: algorithm,
                filesystem: filesystem, rank: rank, device: device, remote: type == .nvmeof ? nvmeof.remote : nil)
            let change = try state.tiers.createTier(spec, check: check)
            try finish(change, tier: name, output)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Show each tier: type, path, size, used, free, models; zram memory and compression ratio.",
            discussion: """
                For zram, ORIG is the data stored, COMPR its compressed size and MEM the RAM \
                the device really uses (all from /sys/block/zramN/mm_stat); RATIO is ORIG/COMPR.
                """)

        @OptionGroup var state: TierStateOptions
        @OptionGroup var output: OutputOptions

        struct Data: Encodable { var tiers: [TierStatus] }

        func run() throws {
            output.bootstrap()
            let tiers = try state.tiers.listTiers()
            try CommandOutput.finish(
                output, changed: false, failed: false, msg: "\(tiers.count) tier(s)", data: Data(tiers: tiers)
            ) {
                guard !tiers.isEmpty else {
                    return "no tiers; create one: cachectl tier create fast --type tmpfs --size 8G"
                }
                var rows = [
                    [
                        "NAME", "TYPE", "RANK", "PATH", "SIZE", "USED", "FREE", "STATE", "ZRAM ORIG/COMPR/MEM", "RATIO",
                        "MODELS",
                    ]
                ]
                for t in tiers {
                    let zram =
                        t.zram.map {
                            "\(ByteSize.format($0.origDataSize))/\(ByteSize.format($0.comprDataSize))/\(ByteSize.format($0.memUsedTotal))"
                        } ?? "-"
                    let ratio = t.zram?.compressionRatio.map { formatFixed($0, digits: 2) + "x" } ?? "-"
                    rows.append([
                        t.name, t.type.rawValue + (t.algorithm.map { "/" + $0 } ?? ""), String(t.rank), t.path,
                        ByteSize.format(t.size), t.usage.map { ByteSize.format($0.used) } ?? "-",
                        t.usage.map { ByteSize.format($0.free) } ?? "-", t.live ? "mounted" : "GONE",
                        zram, ratio, t.models.isEmpty ? "-" : t.models.joined(separator: ","),
                    ])
                }
                return formatTable(rows)
            }
        }
    }

    struct Resize: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resize",
            abstract: "Change a tier's size.",
            discussion: """
                tmpfs is remounted in place and may not shrink below what it stores. A zram tier \
                is rebuilt (unmount, reset, disksize, mkfs, mount), so it must be empty: demote \
                its models first.

                Example: cachectl tier resize fast --size 24G
                """)

        @Argument(help: "Tier name.") var name: String
        @Option(help: "New size: 24G, 512M.") var size: String
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var state: TierStateOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            guard let bytes = ByteSize(parsing: size) else {
                throw ValidationError("not a size: \(size) (examples: 16G, 512M)")
            }
            let change = try state.tiers.resizeTier(name, size: bytes, check: check)
            try finish(change, tier: name, output)
        }
    }

    struct Destroy: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "destroy",
            abstract: "Unmount a tier and free its memory (zram: unmount, reset, hot_remove).",
            discussion: """
                Refuses while models are placed in the tier unless --demote (their links go back \
                to cold storage first); an nvmeof tier always demotes first, and one that \
                connected to its export itself disconnects after unmounting. A busy mount (open files) is refused unless --force, \
                which detaches it lazily. Destroying a tier that does not exist changes nothing.

                Example: cachectl tier destroy fast --demote
                """)

        @Argument(help: "Tier name.") var name: String
        @Flag(help: "Demote the models placed in the tier first.") var demote = false
        @Flag(help: "Detach the mount even while files in it are open (MNT_DETACH).") var force = false
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var state: TierStateOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            let change = try state.tiers.destroyTier(name, demote: demote, force: force, check: check)
            try finish(change, tier: name, output)
        }
    }

    struct Health: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "health",
            abstract: "Repair after a reboot: every model link points to a file that exists.",
            discussion: """
                A reboot empties tmpfs and removes zram devices. health finds placements whose \
                copies are gone and points their links back to the cold store, links every cold \
                model that has no link, and removes dangling links cachectl made. With --restore \
                it also creates the missing tiers again and copies pinned models back in.
                Exit status 1 when a tier is still missing afterwards.

                Run it at boot (e.g. a systemd oneshot after the cold store is mounted):
                  cachectl tier health --restore
                """)

        @Flag(help: "Create missing tiers again and re-promote pinned models.") var restore = false
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var state: TierStateOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            let report = try state.tiers.health(restore: restore, check: check, progress: output.showsProgress)
            let missing = report.tiers.filter { !$0.live && !$0.recreated }.map(\.name)
            let msg =
                missing.isEmpty
                ? (report.changed ? "repaired" : "healthy")
                : "tier(s) not mounted: \(missing.joined(separator: ", ")); run: cachectl tier health --restore"
            try CommandOutput.finish(output, changed: report.changed, failed: !report.healthy, msg: msg, data: report) {
                var lines = [msg]
                for tier in report.tiers {
                    lines.append(
                        "  tier \(tier.name): \(tier.recreated ? (check ? "would recreate" : "recreated") : tier.live ? "mounted" : "GONE")"
                    )
                }
                for model in report.demoted { lines.append("  \(model): copy gone, now served from cold storage") }
                for model in report.repromoted { lines.append("  \(model): pinned, copied back") }
                for link in report.links { lines.append("  link \(link.link) -> \(link.target)") }
                for link in report.removedLinks { lines.append("  removed dangling link \(link)") }
                for copy in report.removedCopies { lines.append("  removed \(copy) (left by a killed promote)") }
                return lines.joined(separator: "\n")
            }
        }
    }
}

extension TierType: ExpressibleByArgument {}
extension TierFilesystem: ExpressibleByArgument {}
extension PlacementStrategy: ExpressibleByArgument {}

/// Left-aligned columns separated by two spaces.
func formatTable(_ rows: [[String]]) -> String {
    guard let width = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: width)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}
