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

    @Test func netfsLayoutOn612CountsOperations() throws {
        let before = try traffic("fscache-stats-6.12-before")
        let cold = try traffic("fscache-stats-6.12-after-cold")
        let again = try traffic("fscache-stats-6.12")
        #expect(before.layout == .netfs && before.unit == .operations)
        // The cold read wrote 8 MiB in 32 operations (256 KiB each: rsize) and read nothing from the cache.
        #expect(try #require(cold.cacheWrites) - (before.cacheWrites ?? 0) == 32)
        #expect(cold.cacheReads == before.cacheReads)
        // The second read came from the cache: 11 read operations, no new writes.
        #expect(try #require(again.cacheReads) - (cold.cacheReads ?? 0) == 11)
        #expect(again.cacheWrites == cold.cacheWrites)
        // IO rd/wr on this layout are the same operations, not pages (8 MiB would be 2048 pages).
        let stats = FSCacheStats.parse(try text("fscache-stats-6.12"))
        #expect(stats.value("IO", "rd") == again.cacheReads && stats.value("IO", "wr") == again.cacheWrites)
        #expect(again.lookups == nil)
        // Downloads are every netfs read from a server (the guest's 9p root too).
        #expect(again.downloads == 7355)
        #expect(again.hitRatio == 11.0 / (11.0 + 7355.0))
        #expect(again.hitRatioBasis.contains("every netfs filesystem"))
    }

    @Test func netfsStatsFileMergesWithoutChangingMeaning() throws {
        var stats = FSCacheStats.parse(try text("fscache-stats-6.12"))
        let netfs = FSCacheStats.parse(try text("netfs-stats-6.12"))
        stats.counters.merge(netfs.counters) { mine, theirs in mine.merging(theirs) { a, _ in a } }
        #expect(CacheTraffic(stats: stats).cacheReads == 11)
    }

    @Test func mountstatsOn612HaveNoFscLine() throws {
        // 6.4 removed the NFS client's own fsc counters (netfs took over).
        #expect(NFSFscCounters.parse(try text("mountstats-6.12")) == nil)
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
