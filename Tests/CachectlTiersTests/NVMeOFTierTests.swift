import CachectlSystem
import Foundation
import Synchronization
import Testing

@testable import CachectlTiers

@Suite("nvmeof tiers")
struct NVMeOFTierTests {
    @Test("an nvmeof tier needs a /dev path; other tiers take none")
    func specValidation() throws {
        try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20), device: "/dev/nvme1n1").validate()
        #expect(
            TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20), device: "/dev/nvme1n1").filesystem
                == .ext4)
        #expect(TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20)).rank == 30)
        #expect { try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20)).validate() } throws: {
            ($0 as? CachectlError)?.code == .usage
        }
        #expect {
            try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20), device: "nvme1n1").validate()
        } throws: { ($0 as? CachectlError)?.code == .usage }
        #expect(TierSpec(name: "fast", type: .tmpfs, size: ByteSize(256 << 20), device: "/dev/nvme1n1").device == nil)
    }

    @Test(
        "devices that are not fabrics namespaces are refused before mkfs",
        arguments: ["/dev/null", "/dev/does-not-exist"])
    func refusesOtherDevices(device: String) {
        #expect(throws: CachectlError.self) { try NVMeOFTier.checkFabricsNamespace(device, roots: .system) }
    }

    @Test("state files written before nvmeof existed still load")
    func oldStateLoads() throws {
        let json =
            #"{"spec":{"name":"fast","type":"tmpfs","size":16777216,"path":"/run/cachectl/tiers/fast","rank":10},"created_path":true}"#
        let record = try StateJSON.decode(TierRecord.self, from: Array(json.utf8))
        #expect(record.spec.device == nil && record.spec.type == .tmpfs)
    }
}

/// Records what a tier asked of its remote link, and where the model's link
/// pointed at that moment.
final class RecordingLink: RemoteNamespaceLink {
    let events = Mutex<[String]>([])
    let device: String
    let watchedLink: String?

    init(device: String = "/dev/null", watching link: String? = nil) {
        self.device = device
        self.watchedLink = link
    }

    func connect(_ remote: RemoteNamespace) throws -> String {
        events.withLock { $0.append("connect \(remote.nqn)") }
        return device
    }

    func controllers(of remote: RemoteNamespace) throws -> [String] { ["nvme9"] }

    func disconnect(_ remote: RemoteNamespace) throws {
        let target = watchedLink.flatMap { (try? Path.linkTarget(of: $0)) } ?? "-"
        events.withLock { $0.append("disconnect \(remote.nqn) (link -> \(target))") }
    }
}

@Suite("nvmeof tiers that name their export")
struct RemoteTierTests {
    let remote = RemoteNamespace(
        nqn: "nqn.2014-08.org.cachectl:lend", transport: "tcp", address: "10.77.0.1", port: 4420)

    @Test("the export is checked with the tier: transport, address, port; only nvmeof tiers name one")
    func remoteValidation() throws {
        try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(1 << 30), remote: remote).validate()
        try TierSpec(
            name: "remote", type: .nvmeof, size: ByteSize(1 << 30),
            remote: RemoteNamespace(nqn: "nqn.2014-08.org.cachectl:lend", transport: "loop", address: nil, port: nil)
        ).validate()
        let bad = [
            RemoteNamespace(nqn: "n", transport: "fc", address: "10.77.0.1", port: 4420),
            RemoteNamespace(nqn: "n", transport: "tcp", address: nil, port: 4420),
            RemoteNamespace(nqn: "n", transport: "rdma", address: "10.77.0.1", port: 0),
            RemoteNamespace(nqn: "n", transport: "loop", address: "10.77.0.1", port: nil),
            RemoteNamespace(nqn: "n,transport=loop", transport: "tcp", address: "10.77.0.1", port: 4420),
            RemoteNamespace(nqn: "", transport: "tcp", address: "10.77.0.1", port: 4420),
        ]
        for r in bad {
            #expect("\(r)") {
                try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(1 << 30), remote: r).validate()
            } throws: { error in
                guard let error = error as? CachectlError else { return false }
                return error.code == .usage && error.field?.components.first == "remote"
            }
        }
        #expect(TierSpec(name: "fast", type: .tmpfs, size: ByteSize(1 << 30), remote: remote).remote == nil)
        var tmpfs = TierSpec(name: "fast", type: .tmpfs, size: ByteSize(1 << 30))
        tmpfs.remote = remote
        #expect { try tmpfs.validate() } throws: { ($0 as? CachectlError)?.field == ["remote"] }
    }

    @Test("the export is recorded in the state file and read back, host NQN and all")
    func remoteRoundTrips() throws {
        let s = try Scratch()
        var withHost = remote
        withHost.hostNQN = "nqn.2014-08.org.cachectl:client"
        for r in [remote, withHost] {
            var state = TierState()
            state.tiers = [
                TierRecord(
                    spec: TierSpec(
                        name: "remote", type: .nvmeof, size: ByteSize(1 << 30), device: "/dev/nvme1n1", remote: r))
            ]
            _ = try TierStateFile(path: s.state).save(state)
            #expect(try TierStateFile(path: s.state).load().tiers.first?.spec.remote == r)
            #expect(try AtomicFile.readText(s.state).contains("\"host_nqn\"") == (r.hostNQN != nil))  // nil is left out
        }
    }

    @Test("destroying an nvmeof tier demotes its models first (no --demote needed), then disconnects")
    func destroyDemotesThenDisconnects() throws {
        let s = try Scratch()
        let bytes = try s.write("model.gguf", bytes: Array(repeating: 7, count: 4096))
        let link = RecordingLink(watching: s.models + "/model.gguf")
        let tiers = RAMTiers(stateFile: TierStateFile(path: s.state), remotes: link)
        _ = try tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        // A placement as promote leaves it (the tier is not mounted here: no namespace in a unit test).
        let tierPath = s.tierPath("remote")
        try Path.makeDirectory(tierPath)
        _ = try AtomicFile.write(bytes, to: tierPath + "/model.gguf")
        _ = try ModelFiles.pointLink(modelsDir: s.models, relative: "model.gguf", to: tierPath + "/model.gguf")
        var state = try TierStateFile(path: s.state).load()
        state.tiers.append(
            TierRecord(
                spec: TierSpec(
                    name: "remote", type: .nvmeof, size: ByteSize(1 << 30), path: tierPath, device: "/dev/nvme9n1",
                    remote: remote),
                createdPath: false))
        state.placements["model"] = PlacementRecord(tier: "remote", files: ["model.gguf"], bytes: UInt64(bytes.count))
        _ = try TierStateFile(path: s.state).save(state)

        let change = try tiers.destroyTier("remote")
        #expect(change.demoted == ["model"])
        #expect((try? Path.linkTarget(of: s.models + "/model.gguf")) == s.cold + "/model.gguf")
        #expect(link.events.withLock { $0 } == ["disconnect \(remote.nqn) (link -> \(s.cold)/model.gguf)"])
        #expect(change.steps.first == "demote model" && change.steps.last == "disconnect nvme9 from \(remote.summary)")
        #expect(try TierStateFile(path: s.state).load().tiers.isEmpty)
    }

    @Test("a namespace whose controller is reconnecting is not live: one controller, or a multipath head's paths")
    func controllerStates() throws {
        let s = try Scratch()
        let sys = s.root + "/sys"
        try Path.makeDirectory(sys + "/class/block/nvme1n1/device")
        _ = try AtomicFile.write("connecting\n", to: sys + "/class/block/nvme1n1/device/state")
        for (path, state) in [("nvme2", "live"), ("nvme3", "resetting")] {
            try Path.makeDirectory(sys + "/class/block/nvme2n1/device/" + path)
            _ = try AtomicFile.write(state + "\n", to: sys + "/class/block/nvme2n1/device/\(path)/state")
        }
        let roots = KernelRoots(sys: sys)
        #expect(NVMeOFTier.controllerStates("/dev/nvme1n1", roots: roots) == ["connecting"])
        #expect(NVMeOFTier.controllerStates("/dev/nvme2n1", roots: roots).sorted() == ["live", "resetting"])
        #expect(NVMeOFTier.controllerStates("/dev/nvme9n1", roots: roots).isEmpty)
    }

    @Test("a tmpfs tier still refuses to be destroyed with models in it unless --demote")
    func tmpfsStillRefuses() throws {
        let s = try Scratch()
        var state = TierState()
        state.tiers = [
            TierRecord(spec: TierSpec(name: "fast", type: .tmpfs, size: ByteSize(1 << 30), path: s.tierPath("fast")))
        ]
        state.placements["model"] = PlacementRecord(tier: "fast", files: ["model.gguf"], bytes: 1)
        _ = try TierStateFile(path: s.state).save(state)
        #expect(throws: CachectlError.self) {
            try RAMTiers(stateFile: TierStateFile(path: s.state)).destroyTier("fast")
        }
    }

    @Test(
        "bringing up a tier that names its export connects through the link, still refuses a device that is not a fabrics namespace, and then leaves no connection"
    )
    func connectsThenChecksTheDevice() throws {
        let s = try Scratch()
        let link = RecordingLink(device: "/dev/null")
        let tiers = RAMTiers(stateFile: TierStateFile(path: s.state), remotes: link)
        let spec = TierSpec(
            name: "remote", type: .nvmeof, size: ByteSize(1 << 30), path: s.tierPath("remote"), remote: remote)
        #expect(throws: CachectlError.self) { try tiers.createTier(spec) }
        #expect(link.events.withLock { $0 } == ["connect \(remote.nqn)", "disconnect \(remote.nqn) (link -> -)"])
        #expect(try TierStateFile(path: s.state).load().tiers.isEmpty)
        #expect(access(s.tierPath("remote"), F_OK) != 0)  // the directory it made is gone again
    }

    @Test("--check of a tier that names its export lists connect, mkfs and mount, and connects nothing")
    func checkConnectsNothing() throws {
        let s = try Scratch()
        let link = RecordingLink(device: "/dev/null")
        let tiers = RAMTiers(stateFile: TierStateFile(path: s.state), remotes: link)
        let spec = TierSpec(
            name: "remote", type: .nvmeof, size: ByteSize(1 << 30), path: s.tierPath("remote"), remote: remote)
        let check = try tiers.createTier(spec, check: true)
        #expect(
            check.steps == [
                "create \(s.tierPath("remote"))", "connect to \(remote.summary)",
                "make ext4 on the namespace of \(remote.nqn)",
                "mount the namespace of \(remote.nqn) on \(s.tierPath("remote")) with discard",
            ])
        #expect(link.events.withLock { $0 }.isEmpty)
        #expect(access(s.tierPath("remote"), F_OK) != 0)
    }
}
