import Foundation
import Testing

@testable import CachectlFSCache

/// FS-Cache's counters by meaning, on stats captured from the test bed's guest
/// (integration/scenarios/fscache-capture-fixtures.sh): before any read, after
/// a cold 8 MiB read through an NFS mount with fsc, and after reading it again
/// after drop_caches (served from the cache).
@Suite struct CacheTrafficTests {
    func text(_ name: String) throws -> String { try String(contentsOfFile: fixture(name), encoding: .utf8) }
    func traffic(_ name: String, mountstats: String? = nil) throws -> CacheTraffic {
        CacheTraffic(
            stats: FSCacheStats.parse(try text(name)),
            nfsFsc: try mountstats.flatMap { NFSFscCounters.parse(try text($0)) })
    }

    /// The same capture on 6.12 and on Debian unstable's 7.2 (which adds `RS` to
    /// "Reads" and a "Retries" line): the cold read wrote 8 MiB in 32 operations
    /// (256 KiB each: rsize); the read from the cache took 11 operations on 6.12 and
    /// 32 on 7.2.
    @Test(arguments: [("6.12", 11 as UInt64, 7355 as UInt64), ("7.2", 32, 695)])
    func netfsLayoutCountsOperations(kernel: String, readsFromCache: UInt64, downloads: UInt64) throws {
        let before = try traffic("fscache-stats-\(kernel)-before")
        let cold = try traffic("fscache-stats-\(kernel)-after-cold")
        let again = try traffic("fscache-stats-\(kernel)")
        #expect(before.layout == .netfs && before.unit == .operations)
        #expect(try #require(cold.cacheWrites) - (before.cacheWrites ?? 0) == 32)
        #expect(cold.cacheReads == before.cacheReads)
        // The second read came from the cache, with no new writes.
        #expect(try #require(again.cacheReads) - (cold.cacheReads ?? 0) == readsFromCache)
        #expect(again.cacheWrites == cold.cacheWrites)
        // IO rd/wr on this layout are the same operations, not pages (8 MiB would be 2048 pages).
        let stats = FSCacheStats.parse(try text("fscache-stats-\(kernel)"))
        #expect(stats.value("IO", "rd") == again.cacheReads && stats.value("IO", "wr") == again.cacheWrites)
        #expect(again.lookups == nil)
        // Downloads are every netfs read from a server (the guest's 9p root too).
        #expect(again.downloads == downloads)
        #expect(again.hitRatio == Double(readsFromCache) / Double(readsFromCache + downloads))
        #expect(again.hitRatioBasis.contains("every netfs filesystem"))
    }

    @Test func newerNetfsCountersParseBesideTheOldOnes() throws {
        let stats = FSCacheStats.parse(try text("fscache-stats-7.2"))
        #expect(stats.value("Reads", "RS") == 0 && stats.value("Reads", "RA") == 627)
        #expect(stats.value("Retries", "rq") == 0 && stats.value("Retries", "ws") == 0)
        #expect(FSCacheStats.parse(try text("fscache-stats-6.12")).value("Retries", "rq") == nil)
    }

    @Test(arguments: [("6.12", 11 as UInt64), ("7.2", 32)])
    func netfsStatsFileMergesWithoutChangingMeaning(kernel: String, cacheReads: UInt64) throws {
        var stats = FSCacheStats.parse(try text("fscache-stats-\(kernel)"))
        let netfs = FSCacheStats.parse(try text("netfs-stats-\(kernel)"))
        stats.counters.merge(netfs.counters) { mine, theirs in mine.merging(theirs) { a, _ in a } }
        #expect(CacheTraffic(stats: stats).cacheReads == cacheReads)
    }

    @Test(arguments: ["6.12", "7.2"])
    func mountstatsAfter64HaveNoFscLine(kernel: String) throws {
        // 6.4 removed the NFS client's own fsc counters (netfs took over).
        #expect(NFSFscCounters.parse(try text("mountstats-\(kernel)")) == nil)
    }

    @Test func ioPagesLayoutOn61CountsPagesAndLookups() throws {
        let before = try traffic("fscache-stats-6.1-before")
        let cold = try traffic("fscache-stats-6.1-after-cold", mountstats: "mountstats-6.1-after-cold")
        let again = try traffic("fscache-stats-6.1", mountstats: "mountstats-6.1")
        #expect(before.layout == .ioPages && before.unit == .pages)
        // A cold 8 MiB read: 2048 pages looked up (all missing) and 2048 written.
        // IO rd rises on misses: it is lookups, not reads from the cache.
        #expect(cold.lookups == 2048 && cold.cacheWrites == 2048)
        #expect(cold.cacheReads == 0 && cold.downloads == 2048)
        #expect(cold.hitRatio == 0)
        // Read again after drop_caches: 2048 more lookups, all found.
        #expect(again.lookups == 4096 && again.cacheWrites == 2048)
        #expect(again.cacheReads == 2048 && again.downloads == 2048)
        #expect(again.hitRatio == 0.5)
        // Without the NFS client's counters, 6.1 cannot say what was served.
        let statsOnly = try traffic("fscache-stats-6.1")
        #expect(statsOnly.cacheReads == nil && statsOnly.hitRatio == nil && statsOnly.lookups == 4096)
    }

    @Test func nfsFscLineIsSummedOverMounts() throws {
        let one = try #require(NFSFscCounters.parse(try text("mountstats-6.1")))
        #expect(one.mounts == 1 && one.readOK == 2048 && one.readFailed == 2048)
        let two = try #require(NFSFscCounters.parse("\tfsc:\t1 2 3 4 5\n\tfsc:\t10 20 0 0 0\n"))
        #expect(two.mounts == 2 && two.readOK == 11 && two.readFailed == 22)
    }

    @Test func retrievalsLayoutBefore517() throws {
        let t = try traffic("fscache-stats-5.10")
        #expect(t.layout == .retrievals && t.unit == .pages)
        #expect(t.cacheReads == 300 && t.downloads == 100 && t.cacheWrites == 100 && t.lookups == 400)
        #expect(t.hitRatio == 0.75)
    }

    @Test func noCacheTrafficYetHasNoRatio() throws {
        let t = try traffic("fscache-stats-6.12-before")
        #expect(t.cacheReads == 0)
        #expect(t.hitRatio == 0)  // 7081 netfs downloads (the 9p root), no cache read
        #expect(
            CacheTraffic(stats: FSCacheStats.parse("CaRdOps: RD=0 rs=0 rf=0\nDownOps: DL=0 ds=0\n")).hitRatio == nil)
    }
}
