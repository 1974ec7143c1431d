import CachectlSystem
import Foundation
import Testing

@testable import CachectlFSCache
@testable import CachectlMount

/// Parsers against files captured from the test bed's guest kernels, and a
/// hand-written pre-5.17 stats file (fs/fscache/stats.c layout of 5.10).
@Suite struct ProcParsingTests {
    func text(_ name: String) throws -> String { try String(contentsOfFile: fixture(name), encoding: .utf8) }

    @Test func stats61ByKey() throws {
        let stats = FSCacheStats.parse(try text("fscache-stats-6.1"))
        #expect(stats.value("IO", "rd") == 4096)
        #expect(stats.value("IO", "wr") == 2048)
        #expect(stats.value("Cookies", "n") == 2)
        #expect(stats.value("LRU", "at") == 182)
        // netfs's several "RdHelp" lines merge under one label.
        #expect(stats.value("RdHelp", "DL") == 5197)
        #expect(stats.value("RdHelp", "ZR") == 206)
    }

    @Test func statsBefore517MergeRepeatedLabels() throws {
        let stats = FSCacheStats.parse(try text("fscache-stats-5.10"))
        #expect(stats.value("IO", "rd") == nil)
        #expect(stats.value("Retrvls", "ok") == 300)
        #expect(stats.value("Retrvls", "ops") == 400)  // second Retrvls line merged
    }

    @Test func statsDelta() {
        let before = FSCacheStats.parse("IO     : rd=10 wr=5\n")
        let after = FSCacheStats.parse("IO     : rd=110 wr=5\n")
        #expect(after.delta(since: before).value("IO", "rd") == 100)
    }

    @Test(arguments: ["6.1", "6.12", "7.2"])
    func caches(kernel: String) throws {
        let caches = FSCacheCache.parse(try text("fscache-caches-\(kernel)"))
        #expect(
            caches == [FSCacheCache(name: "cachectl-test", state: "A", refs: 3, volumes: 2, objects: 1, accesses: 1)])
        #expect(caches[0].isActive && caches[0].stateName == "active")
        #expect(
            FSCacheCache.parse("CACHE    REF   VOLS  OBJS  ACCES S NAME\n======== ===== ===== ===== ===== = ===\n")
                .isEmpty)
    }

    /// The fsc mount's device minor on each capture (the guest's other mounts come first).
    @Test(arguments: [("6.1", 35), ("6.12", 36), ("7.2", 37)])
    func nfsVolumes(kernel: String, minor: UInt32) throws {
        let volumes = NFSVolume.parse(try text("nfsfs-volumes-\(kernel)"))
        #expect(volumes.count == 2)
        #expect(volumes[0].device == DeviceNumber(major: 0, minor: minor) && volumes[0].fsc)
        #expect(volumes[1].device == DeviceNumber(major: 0, minor: minor + 1) && !volumes[1].fsc)
        #expect(volumes[0].server == "127.0.0.1" && volumes[0].version == "v4")
    }

    @Test(arguments: [("6.1", 35), ("7.2", 37)])
    func mountinfo(kernel: String, minor: UInt32) throws {
        let mounts = try MountTable.mounted(mountinfo: fixture("mountinfo-\(kernel)"))
        let models = try #require(MountTable.mount(at: "/mnt/models", in: mounts))
        #expect(models.fstype == "nfs4" && models.source == "127.0.0.1:/")
        #expect(models.device == DeviceNumber(major: 0, minor: minor))
        #expect(OptionString.contains(models.superOptions ?? "", "fsc"))
        #expect(models.vfsOptions == "ro,relatime")
        #expect(mounts.filter(\.isNetworkShare).map(\.target) == ["/mnt/models", "/mnt/plain", "/mnt/smb"])
    }

    /// 7.2 shows options 6.1 did not (NFS fatal_neterrors; CIFS upcall_target, reparse,
    /// nativesocket, symlink): a remount keeps them, and drops only what mount.nfs computes.
    @Test func liveOptionsOn72KeepTheNewerOptions() throws {
        let mounts = try MountTable.mounted(mountinfo: fixture("mountinfo-7.2"))
        let models = try #require(MountTable.mount(at: "/mnt/models", in: mounts))
        let options = FscSwitch.liveOptions(models, kind: .nfs)
        #expect(!OptionString.contains(options, "addr") && !OptionString.contains(options, "clientaddr"))
        #expect(OptionString.contains(options, "fatal_neterrors") && OptionString.contains(options, "fsc"))
    }

    /// A fixture root laid out like / : mountinfo, nfsfs volumes, bdi readahead and fstab.
    func fixtureRoot() throws -> String {
        let root = temporaryDirectory()
        let fm = FileManager.default
        for dir in ["proc/self", "proc/fs/nfsfs", "sys/class/bdi/0:35", "sys/class/bdi/0:36", "etc"] {
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: fixture("mountinfo-6.1"), toPath: root + "/proc/self/mountinfo")
        try fm.copyItem(atPath: fixture("nfsfs-volumes-6.1"), toPath: root + "/proc/fs/nfsfs/volumes")
        try fm.copyItem(atPath: fixture("fstab-with-comments"), toPath: root + "/etc/fstab")
        try "128\n".write(toFile: root + "/sys/class/bdi/0:35/read_ahead_kb", atomically: false, encoding: .utf8)
        try "128\n".write(toFile: root + "/sys/class/bdi/0:36/read_ahead_kb", atomically: false, encoding: .utf8)
        return root
    }

    @Test func networkMountsJoinVolumesOnDeviceAndFstabOnTarget() throws {
        let root = try fixtureRoot()
        defer { _ = try? FileManager.default.removeItem(atPath: root) }
        let mounts = try NetworkMounts.list(roots: .fixture(root))
        #expect(mounts.map(\.mountpoint) == ["/mnt/models", "/mnt/plain", "/mnt/smb"])
        let models = mounts[0]
        let plain = mounts[1]
        let smb = mounts[2]
        #expect(models.nfsFSC == true && models.fscEnabled && models.readaheadKB == 128)
        #expect(models.server == "127.0.0.1" && models.export == "/")
        #expect(models.fstabHasFsc == false && models.fstabOptions == "ro,vers=4.2,_netdev")
        #expect(plain.nfsFSC == false && !plain.fscEnabled && plain.fstabOptions == nil)
        #expect(smb.nfsFSC == nil && smb.fscInSuperblock && smb.fscEnabled)
        #expect(smb.export == "/models")
    }

    @Test func liveOptionsDropWhatMountNFSComputes() throws {
        let mounts = try MountTable.mounted(mountinfo: fixture("mountinfo-6.1"))
        let plain = try #require(MountTable.mount(at: "/mnt/plain", in: mounts))
        let options = FscSwitch.liveOptions(plain, kind: .nfs)
        #expect(!OptionString.contains(options, "addr") && !OptionString.contains(options, "clientaddr"))
        #expect(options.hasPrefix("ro,relatime,vers=4.2,"))
        #expect(OptionString.contains(options, "nosharecache"))
    }

    @Test(arguments: ["6.1", "6.12"])
    func nconnectAndRsizeAreReadFromTheSuperblockOptions(kernel: String) throws {
        let tuned = try #require(
            MountTable.mount(
                at: "/mnt/models", in: MountTable.mounted(mountinfo: fixture("mountinfo-nconnect-\(kernel)"))))
        #expect(FscSwitch.tuning(of: tuned).nconnect == 4 && FscSwitch.tuning(of: tuned).rsize == 131072)
        let asked = FscSwitch(enable: true, mountpoints: ["/mnt/models"], nconnect: 4, rsize: ByteSize(128 << 10))
        #expect(asked.tuningMatches(FscSwitch.tuning(of: tuned)))
        #expect(
            !FscSwitch(enable: true, mountpoints: ["/mnt/models"], nconnect: 8).tuningMatches(
                FscSwitch.tuning(of: tuned)))
        // CIFS does not show nconnect: what cannot be checked counts as taken.
        #expect(asked.tuningMatches((nconnect: nil, rsize: 131072)))
        // A mount made without nconnect does not show it: one connection.
        let plain = try #require(
            MountTable.mount(at: "/mnt/plain", in: MountTable.mounted(mountinfo: fixture("mountinfo-6.1"))))
        #expect(FscSwitch.tuning(of: plain).nconnect == 1)
        // The options are set in place or appended, the others left as they are.
        #expect(asked.tuned("ro,vers=4.2,fsc") == "ro,vers=4.2,fsc,nconnect=4,rsize=131072")
        #expect(asked.tuned("rsize=65536,ro,nconnect=2") == "rsize=131072,ro,nconnect=4")
    }

    @Test func doctorOnTheFixtureTreeFlagsTheMountWithoutFsc() throws {
        let root = try fixtureRoot()
        defer { _ = try? FileManager.default.removeItem(atPath: root) }
        let findings = Doctor.examine(configPath: root + "/etc/cachefilesd.conf", roots: .fixture(root))
        #expect(findings.contains { $0.check == "config" && $0.severity == .error })
        #expect(findings.contains { $0.check == "daemon" && $0.severity == .error })
        let plain = try #require(
            findings.first { $0.check == "mount /mnt/plain" && $0.detail.contains("without FS-Cache") })
        #expect(plain.fix == "cachectl fsc enable /mnt/plain")
        #expect(
            findings.contains {
                $0.check == "mount /mnt/models" && $0.fix == "cachectl fsc enable /mnt/models --readahead 16M"
            })
    }
}
