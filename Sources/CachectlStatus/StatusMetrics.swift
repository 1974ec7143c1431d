import CachectlSystem
import FoundationEssentials
import Glibc
import Prometheus

/// `cachectl status --prometheus FILE`: the status as Prometheus metrics for
/// node_exporter's textfile collector, rendered by swift-prometheus (which
/// escapes label values and writes HELP/TYPE lines) and written atomically
/// (temp file + rename), so the collector never reads half a file.
public enum StatusMetrics {
    /// The metrics in the Prometheus text exposition format.
    public static func render(_ status: MachineStatus) -> String {
        let registry = PrometheusCollectorRegistry()
        func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "cachectl", metricName: name, unitName: "", helpText: help)
        }
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            registry.makeGauge(descriptor: descriptor(name, help), labels: labels).set(value)
        }
        // Kernel counters since boot: a fresh registry per run, so increment(by:) sets them.
        func counter(_ name: String, _ help: String, _ value: UInt64?, _ labels: [(String, String)] = []) {
            guard let value else { return }
            registry.makeCounter(descriptor: descriptor(name, help), labels: labels).increment(
                by: Int64(clamping: value))
        }

        // FS-Cache
        let cache = status.cache
        // What the kernel counts (pages on 6.1, operations on 6.12) is the unit label.
        let unit = [("unit", cache.unit?.rawValue ?? "unknown")]
        counter(
            "fscache_reads_total", "Reads served from FS-Cache, in the unit the kernel counts (label unit).",
            cache.cacheReads, unit)
        counter(
            "fscache_writes_total", "Writes into FS-Cache after a miss, in the unit the kernel counts (label unit).",
            cache.cacheWrites, unit)
        counter(
            "fscache_downloads_total",
            "Reads that went to the server instead (netfs: every netfs filesystem; 6.1: NFS pages not in the cache).",
            cache.downloads, unit)
        counter(
            "fscache_lookups_total", "Pages looked up in FS-Cache, found or not (6.1's IO rd).", cache.lookups, unit)
        counter("fscache_culled_total", "Cache objects culled for space.", cache.culled)
        counter("fscache_nospace_writes_total", "Cache writes refused for lack of space.", cache.noSpaceWrites)
        if let ratio = cache.hitRatio {
            gauge(
                "fscache_hit_ratio",
                "Reads from FS-Cache / (those + reads from the server) since boot; basis in cachectl cache status.",
                ratio, unit)
        }
        gauge("fscache_daemon_running", "1 when cachefilesd runs.", cache.daemonPids.isEmpty ? 0 : 1)
        for bound in cache.caches {
            gauge(
                "fscache_cache_active", "1 when the kernel lists the cache as active.", bound.isActive ? 1 : 0,
                [("tag", bound.name)])
        }
        if let usage = cache.usage {
            gauge(
                "fscache_filesystem_size_bytes", "Size of the filesystem holding the cache.", Double(usage.totalBytes))
            gauge(
                "fscache_filesystem_available_bytes", "Free bytes on the filesystem holding the cache.",
                Double(usage.availableBytes))
            gauge("fscache_filesystem_files", "Inodes of the filesystem holding the cache.", Double(usage.totalFiles))
            gauge(
                "fscache_filesystem_available_files", "Free inodes on the filesystem holding the cache.",
                Double(usage.availableFiles))
        }

        // Shares
        for share in status.shares {
            let labels = [("mountpoint", share.mountpoint), ("fstype", share.fstype)]
            gauge(
                "share_mounted", "1 when the share is mounted; 0 for an fstab entry nothing is mounted on.",
                share.mounted ? 1 : 0, labels)
            guard share.mounted else { continue }
            gauge("share_fsc_enabled", "1 when FS-Cache backs the NFS/CIFS mount.", share.fscEnabled ? 1 : 0, labels)
            if let kb = share.readaheadKB {
                gauge("share_readahead_bytes", "Readahead window of the mount.", Double(kb * 1024), labels)
            }
        }

        // Tiers and models
        for tier in status.tiers {
            let labels = [("tier", tier.name), ("type", tier.type.rawValue)]
            gauge("tier_live", "1 when the tier is mounted.", tier.live ? 1 : 0, labels)
            gauge("tier_size_bytes", "Configured size of the tier.", Double(tier.size), labels)
            if let usage = tier.usage {
                gauge("tier_used_bytes", "Bytes used in the tier's filesystem.", Double(usage.used), labels)
                gauge("tier_free_bytes", "Bytes free in the tier's filesystem.", Double(usage.free), labels)
            }
            if let zram = tier.zram {
                gauge(
                    "zram_original_bytes", "Uncompressed bytes stored in the zram tier.", Double(zram.origDataSize),
                    labels)
                gauge(
                    "zram_compressed_bytes", "Compressed bytes stored in the zram tier.", Double(zram.comprDataSize),
                    labels)
                gauge("zram_memory_used_bytes", "RAM the zram device uses.", Double(zram.memUsedTotal), labels)
                if let ratio = zram.compressionRatio {
                    gauge("zram_compression_ratio", "Original / compressed bytes.", ratio, labels)
                }
            }
        }
        if !status.models.isEmpty || !status.tiers.isEmpty {
            for (location, count) in status.modelsPerLocation.sorted(by: { $0.key < $1.key }) {
                gauge("models", "Models per location (a tier name, or cold).", Double(count), [("location", location)])
            }
        }

        // NVMe-oF
        gauge("nvmeof_exports", "NVMe-oF subsystems this machine exports.", Double(status.nvmeof.exports.count))
        gauge(
            "nvmeof_connections", "NVMe-oF controllers this machine is connected to.",
            Double(status.nvmeof.connections.count))

        // FUSE mirrors
        for mirror in status.fuse {
            let labels = [("mountpoint", mirror.mountpoint)]
            gauge("fuse_mounted", "1 for each cachectl FUSE mirror mounted.", 1, labels)
            guard let stats = mirror.stats else { continue }
            gauge("fuse_pool_used_bytes", "RAM pool payload of the mirror.", Double(stats.poolUsedBytes), labels)
            gauge("fuse_pool_limit_bytes", "RAM pool limit of the mirror.", Double(stats.poolLimitBytes), labels)
            counter("fuse_hits_total", "Chunk lookups served from the RAM pool.", stats.hits, labels)
            counter("fuse_misses_total", "Chunk lookups that read the source.", stats.misses, labels)
        }

        // Last warm of each list
        for (list, record) in status.warm.sorted(by: { $0.key < $1.key }) {
            let labels = [("list", list), ("into", record.into)]
            gauge(
                "warm_last_throughput_bytes_per_second", "Read throughput of the last warm of the list.",
                record.throughput, labels)
            gauge("warm_last_bytes_read", "Bytes the last warm of the list read.", Double(record.bytesRead), labels)
            gauge("warm_last_seconds", "Duration of the last warm of the list.", record.seconds, labels)
            gauge(
                "warm_last_timestamp_seconds", "Unix time the last warm of the list finished.", record.finishedAt,
                labels)
        }
        return registry.emitToString()
    }

    /// Writes the metrics to `path` atomically (node_exporter reads `*.prom`).
    /// Returns false when the file already had exactly this content.
    @discardableResult
    public static func write(_ status: MachineStatus, to path: String) throws -> Bool {
        try AtomicFile.write(render(status), to: path, mode: 0o644)
    }
}
