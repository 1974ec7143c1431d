import ArgumentParser
import CachectlFUSE
import CachectlPlan
import CachectlStatus
import CachectlSystem
import CachectlTiers
import CachectlWarm
import FoundationEssentials
import Glibc

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "One screen for everything: the cache, shares with fsc, tiers and models, NVMe-oF, FUSE mirrors.",
        discussion: """
            Reads only. --prometheus FILE also writes the numbers as Prometheus metrics for \
            node_exporter's textfile collector (written atomically: a temp file renamed over \
            FILE), e.g. from a timer every minute:

              cachectl status --prometheus /var/lib/node_exporter/textfile/cachectl.prom -q

            Metrics (prefix cachectl_): fscache_reads_total, fscache_writes_total, \
            fscache_hit_ratio, fscache_filesystem_available_bytes, share_fsc_enabled, \
            tier_used_bytes, tier_size_bytes, zram_compression_ratio, models{location}, \
            nvmeof_exports, fuse_pool_used_bytes, warm_last_throughput_bytes_per_second{list}, ...

            Examples:
              cachectl status
              cachectl status --json | jq .tiers
            """)

    @Option(help: ArgumentHelp("Also write Prometheus metrics to this file (atomically).", valueName: "file"))
    var prometheus: String?
    @OptionGroup var state: MachineStateOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        output.bootstrap()
        let e = state.environment
        let status = MachineStatus.read(
            roots: e.roots, cachefilesdConfigPath: e.cachefilesdConfigPath, tierState: e.tierState,
            warmState: e.warmState)
        if let prometheus {
            try StatusMetrics.write(status, to: Path.absolute(prometheus))
        }
        let msg = summary(status) + (prometheus.map { "; metrics in \($0)" } ?? "")
        try CommandOutput.finish(output, changed: false, failed: false, msg: msg, data: status) { screen(status) }
    }

    func summary(_ s: MachineStatus) -> String {
        let active = s.cache.caches.contains(where: \.isActive)
        let down = s.shares.filter { !$0.mounted }.count
        return
            "cache \(active ? "active" : "not active"), \(s.shares.filter(\.fscEnabled).count)/\(s.shares.count) share(s) with fsc, "
            + (down > 0 ? "\(down) share(s) not mounted, " : "")
            + "\(s.tiers.filter(\.live).count)/\(s.tiers.count) tier(s) live, \(s.models.count) model(s), "
            + "\(s.nvmeof.exports.count) export(s), \(s.nvmeof.connections.count) connection(s), \(s.fuse.count) FUSE mirror(s)"
    }

    func screen(_ s: MachineStatus) -> String {
        var out: [String] = []
        let c = s.cache
        out.append("CACHE")
        if let config = c.config {
            out.append(
                "  \(config.dir) (tag \(config.tag)), cachefilesd "
                    + (c.daemonPids.isEmpty
                        ? "not running" : "running (pid \(c.daemonPids.map(String.init).joined(separator: ",")))"))
        } else {
            out.append("  no \(c.configPath)")
        }
        for cache in c.caches { out.append("  kernel cache \(cache.name): \(cache.stateName)") }
        out += trafficLines(c, indent: "  ")
        if let usage = c.usage {
            out.append(
                "  \(ByteSize.format(usage.availableBytes)) of \(ByteSize.format(usage.totalBytes)) free (\(formatFixed(usage.freeBytesPercent, digits: 1))%)"
            )
        }
        out.append("")
        out.append("SHARES")
        if s.shares.isEmpty { out.append("  no NFS or CIFS mount") }
        var rows = [["  MOUNTPOINT", "TYPE", "SOURCE", "FSC", "FSTAB FSC", "READAHEAD"]]
        for m in s.shares {
            guard m.mounted else {
                rows.append([
                    "  " + m.mountpoint, m.fstype, m.source, "not mounted (fstab entry)",
                    m.fstabHasFsc.map { $0 ? "yes" : "no" } ?? "-", "-",
                ])
                continue
            }
            rows.append([
                "  " + m.mountpoint, m.fstype, m.source, m.fscEnabled ? "yes" : "no",
                m.fstabHasFsc.map { $0 ? "yes" : "no" } ?? "-", m.readaheadKB.map { "\($0) KiB" } ?? "-",
            ])
        }
        if !s.shares.isEmpty { out.append(formatTable(rows)) }
        out.append("")
        out.append("TIERS")
        if s.tiers.isEmpty { out.append("  none") }
        rows = [["  TIER", "TYPE", "PATH", "SIZE", "USED", "ZRAM RATIO", "MODELS"]]
        for t in s.tiers {
            rows.append([
                "  " + t.name, t.type.rawValue, t.path + (t.live ? "" : " (not mounted)"), ByteSize.format(t.size),
                t.usage.map { ByteSize.format($0.used) } ?? "-",
                t.zram?.compressionRatio.map { formatFixed($0, digits: 2) } ?? "-", t.models.joined(separator: ", "),
            ])
        }
        if !s.tiers.isEmpty { out.append(formatTable(rows)) }
        if !s.models.isEmpty {
            out.append("")
            out.append("MODELS")
            rows = [["  MODEL", "SIZE", "LOCATION"]]
            for m in s.models {
                rows.append([
                    "  " + m.name, ByteSize.format(m.bytes), m.location + (m.pinnedTier != nil ? " (pinned)" : ""),
                ])
            }
            out.append(formatTable(rows))
        }
        out.append("")
        out.append("NVME-OF")
        if s.nvmeof.exports.isEmpty && s.nvmeof.connections.isEmpty { out.append("  no exports, no connections") }
        for e in s.nvmeof.exports {
            out.append(
                "  export \(e.nqn)"
                    + (e.ports.first.map {
                        " on \($0.transport ?? "?") \($0.address ?? "")\($0.port.map { ":\($0)" } ?? "")"
                    } ?? ""))
        }
        for c in s.nvmeof.connections {
            out.append(
                "  connected \(c.name) to \(c.subsystemNQN) (\(c.state))"
                    + (c.devices.isEmpty ? "" : ": " + c.devices.joined(separator: ", ")))
        }
        out.append("")
        out.append("FUSE")
        if s.fuse.isEmpty { out.append("  no cachectl FUSE mirror") }
        for f in s.fuse {
            out.append(
                "  \(f.mountpoint)"
                    + (f.stats.map {
                        " from \($0.source): pool \(ByteSize.format($0.poolUsedBytes)) of \(ByteSize.format($0.poolLimitBytes)), \($0.hits) hits, \($0.misses) misses"
                    } ?? ""))
        }
        if !s.warm.isEmpty {
            out.append("")
            out.append("LAST WARM")
            for (name, r) in s.warm.sorted(by: { $0.key < $1.key }) {
                out.append(
                    "  \(name): \(ByteSize.format(r.bytesRead)) into \(r.into) at \(ByteSize.formatRate(bytes: r.bytesRead, seconds: r.seconds))"
                )
            }
        }
        for problem in s.unreadable { out.append("note: could not read \(problem)") }
        return out.joined(separator: "\n")
    }
}

/// The state files `status`, `serve`, `apply` and `plan` read: tiers and placement,
/// and the warm record.
struct MachineStateOptions: ParsableArguments {
    @OptionGroup var tiers: TierStateOptions
    @Option(help: ArgumentHelp("Where warm runs are recorded.", valueName: "file"))
    var warmState: String = WarmStateFile.defaultPath

    var environment: PlanEnvironment {
        PlanEnvironment(tierState: TierStateFile.resolve(tiers.statePath), warmState: WarmStateFile(path: warmState))
    }
}
