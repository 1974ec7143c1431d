import CachectlSystem

/// What FS-Cache did, by meaning, on whichever layout this kernel prints
/// /proc/fs/fscache/stats in. The same words differ between kernels:
///
/// - `netfs` (FS-Cache inside netfs: 6.12; measured): `CaRdOps: RD=` reads from
///   the cache, `CaWrOps: WR=` writes into it, `DownOps: DL=` reads from servers.
///   Each counts *operations* (a span of any size: 32 writes of 256 KiB for an
///   8 MiB file, 11 reads for it again). `IO rd/wr` are the same operations.
///   `DownOps` counts every netfs filesystem (9p, CIFS, NFS with fsc), cached or not.
/// - `io-pages` (5.17 to the netfs move; Debian's 6.1; measured): `IO : rd= wr=`
///   count *pages*, and `IO rd` counts every page the NFS client looked up in
///   the cache, found or not (a cold 512 MiB read raised it by 131,073). So
///   `rd` is lookups; reads served from the cache come from the NFS client's own
///   `fsc:` line in /proc/self/mountstats (pages read from the cache, pages not
///   found), summed over the NFS mounts.
/// - `retrievals` (before 5.17): `Retrvls: ok=` pages served, `nod=` pages the
///   cache did not have; `Stores: ok=` pages written.
public struct CacheTraffic: Sendable, Equatable, Codable {
    public enum Layout: String, Sendable, Codable {
        case netfs
        case ioPages = "io-pages"
        case retrievals
    }

    public enum Unit: String, Sendable, Codable {
        case pages, operations
    }

    public var layout: Layout
    /// What every counter below counts.
    public var unit: Unit
    /// Served from the cache (nil where this kernel does not say).
    public var cacheReads: UInt64?
    /// Written into the cache.
    public var cacheWrites: UInt64?
    /// Read from the server instead (netfs: every netfs filesystem; io-pages:
    /// NFS pages the cache did not have).
    public var downloads: UInt64?
    /// io-pages only: cache lookups, found or not (`IO rd`).
    public var lookups: UInt64?
    /// cacheReads / (cacheReads + downloads), nil before any such read.
    public var hitRatio: Double?
    /// What the ratio divides, in words.
    public var hitRatioBasis: String

    /// - Parameter nfsFsc: the summed `fsc:` lines of /proc/self/mountstats
    ///   (6.1's NFS client: pages read from the cache, pages not in it).
    public init(stats: FSCacheStats, nfsFsc: NFSFscCounters? = nil) {
        if stats.counters["CaRdOps"] != nil || stats.counters["DownOps"] != nil {
            layout = .netfs
            unit = .operations
            cacheReads = stats.value("CaRdOps", "RD")
            cacheWrites = stats.value("CaWrOps", "WR")
            downloads = stats.value("DownOps", "DL")
            lookups = nil
            hitRatioBasis =
                "read operations served from the cache among all netfs reads (cache + server; every netfs filesystem counts)"
        } else if stats.counters["IO"] != nil {
            layout = .ioPages
            unit = .pages
            lookups = stats.value("IO", "rd")
            cacheWrites = stats.value("IO", "wr")
            cacheReads = nfsFsc?.readOK
            downloads = nfsFsc?.readFailed
            hitRatioBasis =
                "NFS pages read from the cache among NFS pages looked up in it (mountstats fsc: read ok / (ok + not found))"
        } else {
            layout = .retrievals
            unit = .pages
            cacheReads = stats.value("Retrvls", "ok")
            downloads = stats.value("Retrvls", "nod")
            cacheWrites = stats.value("Stores", "ok")
            lookups = stats.value("Retrvls", "n")
            hitRatioBasis = "pages served among pages asked of the cache (Retrvls ok / (ok + nod))"
        }
        if let reads = cacheReads, let misses = downloads, reads + misses > 0 {
            hitRatio = Double(reads) / Double(reads + misses)
        } else {
            hitRatio = nil
        }
    }

    /// Reads fscache's (and netfs's) stats, and on the io-pages layout the NFS
    /// client's `fsc:` counters.
    public static func read(proc: String = "/proc") throws(CachectlError) -> CacheTraffic {
        let stats = try FSCacheStats.read(proc: proc)
        let nfs =
            stats.counters["CaRdOps"] == nil
            ? (try? AtomicFile.readText(proc + "/self/mountstats")).flatMap(NFSFscCounters.parse) : nil
        return CacheTraffic(stats: stats, nfsFsc: nfs)
    }
}

/// The NFS client's FS-Cache counters (until 6.4: a `fsc:` line per mount with
/// fsc in /proc/self/mountstats: pages read from the cache, pages the cache did
/// not have, then three write counters that 6.1 miscounts — every successful
/// write lands in "write failed" — and are left alone), summed over the mounts.
public struct NFSFscCounters: Sendable, Equatable {
    public var readOK: UInt64 = 0
    public var readFailed: UInt64 = 0
    public var mounts = 0

    public static func parse(_ text: String) -> NFSFscCounters? {
        var total = NFSFscCounters()
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.first == "fsc:", fields.count >= 3 else { continue }
            let values = fields.dropFirst().map { UInt64($0) ?? 0 }
            total.readOK += values[0]
            total.readFailed += values[1]
            total.mounts += 1
        }
        return total.mounts > 0 ? total : nil
    }
}
