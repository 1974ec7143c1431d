import CachectlFSCache
import CachectlFUSE
import CachectlMount
import CachectlNVMeOF
import CachectlSystem
import CachectlTiers
import CachectlWarm
import FoundationEssentials
import Glibc

/// Everything cachectl manages on this machine, read in one go (reads only):
/// the FS-Cache cache, NFS/CIFS mounts and their fsc state, RAM tiers and the
/// models in them, NVMe-oF exports and connections, FUSE mirrors, and the last
/// warm of each list. A part that cannot be read is named in `unreadable`
/// rather than failing the whole status.
public struct MachineStatus: Encodable, Sendable {
    public var cache: CacheStatus
    public var shares: [NetworkMount]
    public var tiers: [TierStatus]
    /// Empty until a models directory is configured.
    public var models: [ModelStatus]
    public var nvmeof: NVMeOFStatus
    public var fuse: [FuseMirror]
    /// Last warm of each list (`cachectl apply` and `cachectl-warm@.service`).
    public var warm: [String: WarmRecord]
    /// Parts that could not be read, with why.
    public var unreadable: [String]

    public struct NVMeOFStatus: Encodable, Sendable {
        /// False when the nvmet module is not loaded (nothing exported).
        public var targetLoaded: Bool
        public var exports: [ExportStatus]
        public var connections: [FabricsController]
    }

    public struct FuseMirror: Encodable, Sendable {
        public var mountpoint: String
        /// The daemon's last stats snapshot (nil when its stats file is missing).
        public var stats: FuseStats?
    }

    public static func read(
        roots: KernelRoots = .system, cachefilesdConfigPath: String = "/etc/cachefilesd.conf",
        tierState: TierStateFile = TierStateFile.resolve(nil), warmState: WarmStateFile = WarmStateFile(),
        fuseStateDirectory: String = FuseStatsFile.defaultDirectory
    ) -> MachineStatus {
        var unreadable: [String] = []
        let cache = CacheStatus.read(configPath: cachefilesdConfigPath, roots: roots)
        var shares: [NetworkMount]
        do { shares = try NetworkMounts.list(roots: roots) } catch {
            shares = []
            unreadable.append("mounts: \(error)")
        }
        shares += NetworkMounts.unmountedFstabShares(roots: roots)
        let ramTiers = RAMTiers(stateFile: tierState, roots: roots)
        let tiers: [TierStatus]
        do { tiers = try ramTiers.listTiers() } catch {
            tiers = []
            unreadable.append("tiers: \(error)")
        }
        var models: [ModelStatus] = []
        if (try? tierState.load())?.modelsDir != nil {
            do { models = try ramTiers.listModels() } catch { unreadable.append("models: \(error)") }
        }
        let target = NVMeTarget(roots: roots)
        var exports: [ExportStatus] = []
        if target.isLoaded {
            do { exports = try target.list() } catch { unreadable.append("nvmet: \(error)") }
        }
        let nvmeof = NVMeOFStatus(
            targetLoaded: target.isLoaded, exports: exports, connections: FabricsHost(roots: roots).controllers())
        let fuse = fuseMountpoints(roots: roots).map { mountpoint in
            FuseMirror(
                mountpoint: mountpoint,
                stats: try? FuseStatsFile.read(mountpoint: mountpoint, directory: fuseStateDirectory))
        }
        return MachineStatus(
            cache: cache, shares: shares, tiers: tiers, models: models, nvmeof: nvmeof, fuse: fuse,
            warm: warmState.load().lists, unreadable: unreadable)
    }

    /// Mount points of cachectl's FUSE mirrors (type fuse.cachectl in mountinfo).
    static func fuseMountpoints(roots: KernelRoots) -> [String] {
        guard let text = try? AtomicFile.readText(roots.proc + "/self/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields[dash + 1] == "fuse.cachectl",
                fields.count > 4
            else { return nil }
            let mountpoint = String(fields[4])
            return FuseMountTable.isMirror(mountpoint, roots: roots) ? mountpoint : nil
        }
    }

    /// Models per location: tier name, or `cold`.
    public var modelsPerLocation: [String: Int] {
        var counts: [String: Int] = [:]
        for tier in tiers { counts[tier.name] = 0 }
        counts["cold"] = 0
        for model in models { counts[model.location, default: 0] += 1 }
        return counts
    }
}
