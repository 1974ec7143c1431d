import CachectlFSCache
import CachectlMount
import CachectlStatus
import CachectlSystem
import CachectlTiers
import Foundation

@testable import CachectlServe

/// Page states for the page tests: a status read from a scratch tree, then
/// changed field by field into what a test needs (every branch of the template).
enum PageStates {
    static let now = Date(timeIntervalSince1970: 1_796_000_000.25)

    /// Nothing configured: no tiers, models, shares or jobs; one unreadable part.
    static func empty(_ s: ServeScratch) -> MachineStatus {
        var status = DashboardServer.status(s.environment)
        status.cache.config = nil
        status.cache.usage = nil
        status.cache.daemonPids = []
        status.cache.caches = []
        status.cache.hitRatio = nil
        status.cache.hitRatioBasis = nil
        status.cache.cacheReads = nil
        status.cache.statsLayout = nil
        status.cache.unit = nil
        status.shares = []
        status.tiers = []
        status.models = []
        status.unreadable = [#"mounts: <mountinfo> & "quoted" 'single'"#]
        return status
    }

    /// Everything present: a live tmpfs tier (`fast`, created by the caller)
    /// and a copy of it not mounted, two models (one hot and pinned, one with a
    /// name and problem that need escaping), two shares, cache usage.
    static func full(_ s: ServeScratch) throws -> MachineStatus {
        var status = DashboardServer.status(s.environment)
        var config = CachefilesdConfig()
        config.dir = "/var/cache/fscache <&>"
        config.tag = "mycache"
        status.cache.config = config
        status.cache.usage = try JSONDecoder().decode(
            CacheDirectory.Usage.self,
            from: Data(
                #"{"totalBytes": 1000000000, "availableBytes": 123456789, "totalFiles": 100, "availableFiles": 50}"#
                    .utf8))
        status.cache.daemonPids = [42]
        status.cache.hitRatio = 0.45678
        status.cache.hitRatioBasis = "cache reads / (cache reads + downloads)"
        status.cache.cacheReads = 1234
        status.cache.cacheWrites = 56
        status.cache.downloads = 7
        let share =
            #"{"mountpoint": "/mnt/it's <nfs>", "fstype": "nfs4", "source": "srv:/export&x", "server": "srv", "export": "/export", "options": "rw", "fscInSuperblock": true, "nfsFSC": false, "mounted": true}"#
        var nfs = try JSONDecoder().decode(NetworkMount.self, from: Data(share.utf8))
        var cifs = nfs
        cifs.fstype = "cifs"
        cifs.nfsFSC = nil
        cifs.fscInSuperblock = false
        cifs.mountpoint = "/mnt/smb"
        var down = nfs
        down.mounted = false
        down.mountpoint = "/mnt/down"
        nfs.nfsFSC = true
        status.shares = [nfs, cifs, down]
        var tiers = status.tiers
        if var second = tiers.first {
            second.name = "slow\"<'>"
            second.live = false
            second.usage = nil
            second.models = []
            tiers.append(second)
        }
        status.tiers = tiers
        var models = status.models
        if var hot = models.first {
            hot.location = "fast"
            hot.pinnedTier = "fast"
            hot.problem = nil
            var odd = hot
            odd.name = #"odd <b>&"name"'s/model?#%"#
            odd.location = "cold"
            odd.pinnedTier = nil
            odd.problem = "unreadable manifest: <x> & \"y\""
            models = [hot, odd]
        }
        status.models = models
        status.unreadable = []
        return status
    }

    static func jobs() -> [JobBoard.Job] {
        var done = JobBoard.Job(id: "j1-abc", kind: "promote", target: "llama <tiny>", state: .succeeded, startedAt: 1)
        done.msg = "promoted \"llama\" & co's"
        var failed = JobBoard.Job(id: "j2-def", kind: "warm", target: "x", state: .failed, startedAt: 2)
        failed.msg = "<failed>"
        failed.totalBytes = 300
        failed.doneBytes = 100
        var running = JobBoard.Job(id: "j3-123", kind: "demote", target: "y", state: .running, startedAt: 3)
        running.totalBytes = 1000
        running.doneBytes = 333
        return [done, failed, running]
    }

    static func history(samples: Int) -> TrafficSampler.History {
        var list: [TrafficSampler.Sample] = []
        for i in 0..<samples {
            let t = now.timeIntervalSince1970 - Double(samples - i) * 10
            list.append(
                TrafficSampler.Sample(
                    time: t, cacheReads: UInt64(i * i * 7), cacheWrites: i == 3 ? nil : UInt64(i * 3),
                    downloads: UInt64(i)))
        }
        return TrafficSampler.History(
            intervalSeconds: 10, unit: samples == 0 ? nil : "pages", layout: "6.x", samples: list)
    }
}
