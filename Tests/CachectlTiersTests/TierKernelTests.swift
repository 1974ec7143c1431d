import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlTiers

/// Real tmpfs and zram tiers on this kernel. Run as root in a private mount namespace:
/// `unshare -m --propagation private swift test --filter CachectlTiersTests`.
/// zram devices are global: every test releases its own (Scratch.cleanup).
@Suite(.serialized, .rootInPrivateMountNamespace)
struct TierKernelTests {
    func tmpfs(_ s: Scratch, _ name: String, size: UInt64 = 64 << 20, rank: Int? = nil) -> TierSpec {
        TierSpec(name: name, type: .tmpfs, size: ByteSize(size), path: s.tierPath(name), rank: rank)
    }

    @Test func createsTmpfsAndZramTiersIdempotently() throws {
        let s = try Scratch()
        let created = try s.tiers.createTier(tmpfs(s, "fast"))
        #expect(created.changed && created.action == "created")
        let zspec = TierSpec(
            name: "squeezed", type: .zram, size: ByteSize(64 << 20), path: s.tierPath("squeezed"), algorithm: "lz4")
        let z = try s.tiers.createTier(zspec)
        #expect(z.changed)

        let mounts = try MountTable.mounted()
        let fast = try #require(mounts.last { $0.target == s.tierPath("fast") })
        #expect(
            fast.fstype == "tmpfs" && OptionString.split(fast.options).contains("size=65536k")
                && OptionString.split(fast.options).contains("nosuid"))
        let zmount = try #require(mounts.last { $0.target == s.tierPath("squeezed") })
        #expect(zmount.fstype == "ext4" && OptionString.split(zmount.options).contains("discard"))
        let id = try #require(TierStateFile(path: s.state).load().tier(named: "squeezed")?.zramDevice)
        #expect(zmount.source == "/dev/zram\(id)")
        #expect(try ZramDevice(id: id).algorithms().current == "lz4")
        #expect(try ZramDevice(id: id).diskSize() == 64 << 20)

        // Second run: nothing to do, and the state file is not rewritten.
        let before = try AtomicFile.readBytes(s.state)
        #expect(try s.tiers.createTier(tmpfs(s, "fast")).changed == false)
        #expect(try s.tiers.createTier(zspec).changed == false)
        #expect(try AtomicFile.readBytes(s.state) == before)
        // Same name, other settings: refused.
        #expect(throws: CachectlError.self) { try s.tiers.createTier(tmpfs(s, "fast", size: 128 << 20)) }

        let list = try s.tiers.listTiers()
        #expect(list.map(\.name) == ["fast", "squeezed"] && list.allSatisfy(\.live))
        #expect(list[0].usage?.total == 64 << 20)

        // check mode changes nothing.
        #expect(try s.tiers.destroyTier("squeezed", check: true).changed)
        #expect(ZramDevice(id: id).exists)

        let destroyed = try s.tiers.destroyTier("squeezed")
        #expect(destroyed.changed && !ZramDevice(id: id).exists)
        #expect(try MountTable.entry(at: s.tierPath("squeezed")) == nil)
        #expect(try s.tiers.destroyTier("squeezed").changed == false)
    }

    @Test func zramRatioMatchesMmStat() throws {
        let s = try Scratch()
        try s.write("text.gguf", bytes: compressibleBytes(24 << 20))
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(TierSpec(name: "z", type: .zram, size: ByteSize(64 << 20), path: s.tierPath("z")))
        let change = try s.tiers.promote("text", tier: "z")
        #expect(change.copiedBytes == 24 << 20)

        let status = try #require(try s.tiers.listTiers().first)
        let id = try #require(try TierStateFile(path: s.state).load().tier(named: "z")?.zramDevice)
        let raw = try AtomicFile.readText("/sys/block/zram\(id)/mm_stat")
        let fields = raw.split(separator: " ").compactMap { UInt64($0) }
        let reported = try #require(status.zram)
        #expect(
            reported.origDataSize == fields[0] && reported.comprDataSize == fields[1]
                && reported.memUsedTotal == fields[2])
        let ratio = try #require(reported.compressionRatio)
        #expect(abs(ratio - Double(fields[0]) / Double(fields[1])) < 1e-9)
        #expect(fields[0] >= 24 << 20)  // the copy is stored (fsync put it on the device)
        #expect(ratio > 2)  // repetitive text compresses
    }

    @Test func promotesAndDemotesGGUFShardsWithVerifiedBytesAndLinks() throws {
        let s = try Scratch()
        var shards: [[UInt8]] = []
        for i in 1...4 {
            shards.append(
                try s.write("mix/mixtral-0000\(i)-of-00004.gguf", bytes: randomBytes(3 << 20, seed: UInt64(i))))
        }
        let setup = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        #expect(setup.changed && setup.links.count == 4)
        #expect(try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold).changed == false)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))

        #expect(try s.tiers.promote("mix/mixtral", check: true).changed)
        #expect(
            (try? Path.linkTarget(of: s.models + "/mix/mixtral-00001-of-00004.gguf")) == s.cold
                + "/mix/mixtral-00001-of-00004.gguf")

        let change = try s.tiers.promote("mix/mixtral-00003-of-00004.gguf")
        #expect(change.changed && change.tier == "fast" && change.files == 4 && change.copiedBytes == 12 << 20)
        for i in 1...4 {
            let name = "mix/mixtral-0000\(i)-of-00004.gguf"
            #expect((try? Path.linkTarget(of: s.models + "/" + name)) == s.tierPath("fast") + "/" + name)
            #expect(try readAll(s.models + "/" + name) == shards[i - 1])
            #expect(try readAll(s.tierPath("fast") + "/" + name) == shards[i - 1])
        }
        #expect(try s.tiers.promote("mix/mixtral").changed == false)
        #expect(try s.tiers.listModels().first?.location == "fast")

        let demoted = try s.tiers.demote("mix/mixtral")
        #expect(demoted.changed && demoted.from == "fast")
        for i in 1...4 {
            let name = "mix/mixtral-0000\(i)-of-00004.gguf"
            #expect((try? Path.linkTarget(of: s.models + "/" + name)) == s.cold + "/" + name)
            #expect(try readAll(s.models + "/" + name) == shards[i - 1])
            #expect(access(s.tierPath("fast") + "/" + name, F_OK) != 0)
        }
        #expect(try s.tiers.demote("mix/mixtral").changed == false)
        #expect(try TierStateFile(path: s.state).load().placements.isEmpty)
    }

    @Test func promotesAnOllamaModelVerifyingBlobDigests() throws {
        let s = try Scratch()
        let weights = randomBytes(5 << 20, seed: 7)
        let digests = try s.writeOllamaModel(name: "llama3", tag: "8b", weights: weights)
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(TierSpec(name: "z", type: .zram, size: ByteSize(64 << 20), path: s.tierPath("z")))

        let change = try s.tiers.promote("llama3:8b")
        #expect(change.changed && change.tier == "z" && change.verifiedBlobs == 3 && change.files == 4)
        let blob = "ollama/blobs/sha256-" + digests[0]
        #expect((try? Path.linkTarget(of: s.models + "/" + blob)) == s.tierPath("z") + "/" + blob)
        #expect(try SHA256Digest.ofFile(s.models + "/" + blob) == digests[0])
        #expect(
            try readAll(s.models + "/ollama/manifests/registry.ollama.ai/library/llama3/8b")
                == readAll(s.cold + "/ollama/manifests/registry.ollama.ai/library/llama3/8b"))

        _ = try s.tiers.demote("llama3:8b")
        #expect((try? Path.linkTarget(of: s.models + "/" + blob)) == s.cold + "/" + blob)
        #expect(access(s.tierPath("z") + "/" + blob, F_OK) != 0)
    }

    @Test func corruptBlobIsRefusedAndNothingChanges() throws {
        let s = try Scratch()
        let digests = try s.writeOllamaModel(name: "phi3", tag: "mini", weights: randomBytes(1 << 20, seed: 5))
        // Flip one byte of the weights: same size, wrong digest.
        let path = s.cold + "/ollama/blobs/sha256-" + digests[0]
        var bytes = try readAll(path)
        bytes[1000] ^= 0xff
        _ = try AtomicFile.write(bytes, to: path)
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))
        let stateBefore = try AtomicFile.readBytes(s.state)

        #expect { try s.tiers.promote("phi3:mini") } throws: { "\($0)".contains("sha256") }
        #expect(try AtomicFile.readBytes(s.state) == stateBefore)
        #expect((try? Path.linkTarget(of: s.models + "/ollama/blobs/sha256-" + digests[0])) == path)
        #expect(try ModelCatalog.listDirectory(s.tierPath("fast")).isEmpty)
        #expect(Self.hiddenFiles(in: s.tierPath("fast")).isEmpty)
    }

    @Test func readerNeverFailsWhilePromotingAndDemoting() throws {
        let s = try Scratch()
        let content = try s.write("big.gguf", bytes: randomBytes(32 << 20, seed: 11))
        let expected = try sha256(content)
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast", size: 128 << 20))

        let reader = LinkReader(path: s.models + "/big.gguf", expectedSHA256: expected)
        reader.start()
        for _ in 0..<3 {
            #expect(try s.tiers.promote("big").changed)
            #expect(try s.tiers.demote("big").changed)
        }
        #expect(try s.tiers.promote("big").changed)
        let (reads, failures) = reader.stop()
        #expect(failures.count == 0, "reader failures: \(failures.prefix(3))")
        #expect(reads >= 3)
    }

    @Test func fullTierIsRefusedWithNothingChanged() throws {
        let s = try Scratch()
        try s.write("huge.gguf", bytes: randomBytes(20 << 20, seed: 3))
        try s.write("small.gguf", bytes: randomBytes(1 << 20, seed: 4))
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "a", size: 16 << 20))
        _ = try s.tiers.createTier(TierSpec(name: "b", type: .zram, size: ByteSize(16 << 20), path: s.tierPath("b")))
        let stateBefore = try AtomicFile.readBytes(s.state)

        #expect { try s.tiers.promote("huge") } throws: { ($0 as? CachectlError)?.errno == ENOSPC }
        #expect { try s.tiers.promote("huge", tier: "a") } throws: { ($0 as? CachectlError)?.errno == ENOSPC }
        #expect(try AtomicFile.readBytes(s.state) == stateBefore)
        #expect((try? Path.linkTarget(of: s.models + "/huge.gguf")) == s.cold + "/huge.gguf")
        #expect(
            try ModelCatalog.listDirectory(s.tierPath("a")).isEmpty && Self.hiddenFiles(in: s.tierPath("a")).isEmpty)
        #expect(try SpaceUsage.of(s.tierPath("a")).used == 0)
        // A model that fits still goes in.
        #expect(try s.tiers.promote("small").tier == "a")
    }

    @Test func healthFallsBackToColdAfterATierIsWipedAndRestoresPins() throws {
        let s = try Scratch()
        let a = try s.write("a.gguf", bytes: randomBytes(2 << 20, seed: 21))
        try s.write("b.gguf", bytes: randomBytes(2 << 20, seed: 22))
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))
        _ = try s.tiers.promote("a", tier: "fast", pin: true)
        _ = try s.tiers.promote("b")
        #expect(try s.tiers.health().changed == false)

        // What a reboot does: the tmpfs and its contents are gone.
        #expect(umount2(s.tierPath("fast"), 0) == 0)
        #expect(access(s.models + "/a.gguf", R_OK) != 0)  // dangling now
        #expect(try s.tiers.health(check: true).demoted == ["a", "b"])
        #expect(try TierStateFile(path: s.state).load().placements.count == 2)  // check changed nothing

        let report = try s.tiers.health()
        #expect(report.changed && report.demoted == ["a", "b"] && !report.healthy)
        #expect((try? Path.linkTarget(of: s.models + "/a.gguf")) == s.cold + "/a.gguf")
        #expect(try readAll(s.models + "/a.gguf") == a)
        #expect(try TierStateFile(path: s.state).load().placements.isEmpty)

        let restored = try s.tiers.health(restore: true)
        #expect(restored.tiers.first?.recreated == true && restored.repromoted == ["a"] && restored.healthy)
        #expect((try? Path.linkTarget(of: s.models + "/a.gguf")) == s.tierPath("fast") + "/a.gguf")
        #expect((try? Path.linkTarget(of: s.models + "/b.gguf")) == s.cold + "/b.gguf")
        #expect(try s.tiers.health(restore: true).changed == false)
    }

    @Test func destroyRefusesPlacedModelsAndBusyMountsUnlessAsked() throws {
        let s = try Scratch()
        let bytes = try s.write("m.gguf", bytes: randomBytes(1 << 20, seed: 31))
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))
        _ = try s.tiers.promote("m")

        #expect { try s.tiers.destroyTier("fast") } throws: { "\($0)".contains("--demote") }
        let busy = try OpenFile(s.tierPath("fast") + "/m.gguf")
        #expect { try s.tiers.destroyTier("fast", demote: true) } throws: { ($0 as? CachectlError)?.errno == EBUSY }
        // The demote happened before the refusal and stays recorded: links are cold.
        #expect((try? Path.linkTarget(of: s.models + "/m.gguf")) == s.cold + "/m.gguf")
        let forced = try s.tiers.destroyTier("fast", demote: true, force: true)
        #expect(forced.changed)
        _ = busy
        #expect(try readAll(s.models + "/m.gguf") == bytes)
        #expect(try s.tiers.listTiers().isEmpty)
    }

    @Test func resizesTmpfsInPlaceAndZramOnlyWhenEmpty() throws {
        let s = try Scratch()
        try s.write("m.gguf", bytes: randomBytes(1 << 20, seed: 41))
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast"))
        _ = try s.tiers.createTier(TierSpec(name: "z", type: .zram, size: ByteSize(32 << 20), path: s.tierPath("z")))
        _ = try s.tiers.promote("m", tier: "z")

        #expect(try s.tiers.resizeTier("fast", size: ByteSize(96 << 20)).changed)
        #expect(try SpaceUsage.of(s.tierPath("fast")).total == 96 << 20)
        #expect(try s.tiers.resizeTier("fast", size: ByteSize(96 << 20)).changed == false)

        #expect { try s.tiers.resizeTier("z", size: ByteSize(48 << 20)) } throws: { "\($0)".contains("must be empty") }
        _ = try s.tiers.demote("m")
        #expect(try s.tiers.resizeTier("z", size: ByteSize(48 << 20)).changed)
        let id = try #require(try TierStateFile(path: s.state).load().tier(named: "z")?.zramDevice)
        #expect(try ZramDevice(id: id).diskSize() == 48 << 20)
        #expect(try MountTable.entry(at: s.tierPath("z"))?.source == "/dev/zram\(id)")
    }

    /// Only this serialized suite makes zram devices, so the set of them is stable around a call.
    static func zramDevices() -> Set<String> {
        Set((try? Path.entries(of: "/sys/block"))?.filter { $0.hasPrefix("zram") } ?? [])
    }

    @Test(
        "a zram tier that fails part way (mkfs.xfs refuses 24 MiB: xfsprogs >= 5.19) is rolled back: no device, directory or record left"
    )
    func zramBringUpFailureRollsBack() throws {
        let s = try Scratch()
        let before = Self.zramDevices()
        let spec = TierSpec(
            name: "z", type: .zram, size: ByteSize(24 << 20), path: s.tierPath("z"), algorithm: "lz4",
            filesystem: .xfs)
        #expect { try s.tiers.createTier(spec) } throws: { "\($0)".contains("mkfs.xfs") }
        #expect(Self.zramDevices() == before)
        #expect(access(s.tierPath("z"), F_OK) != 0)
        #expect(try TierStateFile(path: s.state).load().tiers.isEmpty)

    }

    @Test("--check reports the steps a real run takes, and takes none")
    func checkListsTheStepsOfARealRun() throws {
        let s = try Scratch()
        let before = Self.zramDevices()
        let z = TierSpec(name: "z", type: .zram, size: ByteSize(32 << 20), path: s.tierPath("z"), algorithm: "lz4")
        let check = try s.tiers.createTier(z, check: true)
        #expect(check.action == "would create" && check.changed)
        #expect(
            check.steps == [
                "create \(s.tierPath("z"))", "add a zram device", "set the new zram device algorithm lz4",
                "size the new zram device to 32.0 MiB", "make ext4 on the new zram device",
                "mount the new zram device on \(s.tierPath("z")) with discard",
            ])
        #expect(Self.zramDevices() == before)
        #expect(access(s.tierPath("z"), F_OK) != 0)

        let created = try s.tiers.createTier(z)
        let id = try #require(try TierStateFile(path: s.state).load().tier(named: "z")?.zramDevice)
        #expect(created.steps == check.steps.map { $0.replacing("the new zram device", with: "/dev/zram\(id)") })
        let destroy = try s.tiers.destroyTier("z", check: true)
        #expect(
            destroy.steps == [
                "unmount ext4 from \(s.tierPath("z"))", "reset and remove /dev/zram\(id)", "remove \(s.tierPath("z"))",
            ])
        #expect(try MountTable.entry(at: s.tierPath("z"))?.source == "/dev/zram\(id)")
        #expect(try s.tiers.destroyTier("z").steps == destroy.steps)
    }

    @Test func strategiesPlaceAcrossRealTiers() throws {
        let s = try Scratch()
        for name in ["m1", "m2", "m3"] { try s.write(name + ".gguf", bytes: randomBytes(1 << 20, seed: 51)) }
        _ = try s.tiers.configureModels(modelsDir: s.models, coldStore: s.cold)
        _ = try s.tiers.createTier(tmpfs(s, "fast", size: 32 << 20, rank: 1))
        _ = try s.tiers.createTier(tmpfs(s, "slow", size: 64 << 20, rank: 5))
        #expect(try s.tiers.promote("m1").tier == "fast")  // fastest-fit
        #expect(try s.tiers.promote("m2", strategy: .roundRobin).tier == "fast")
        #expect(try s.tiers.promote("m3", strategy: .roundRobin).tier == "slow")
        _ = try s.tiers.demote("m3")
        #expect(try s.tiers.promote("m3", strategy: .fillFirst).tier == "fast")  // fuller
    }

    static func hiddenFiles(in dir: String) -> [String] {
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let ent = readdir(handle) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(".") && name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// A thread that opens and reads a path over and over, checking each read is
/// the whole file with the right digest.
final class LinkReader: @unchecked Sendable {
    let path: String
    let expectedSHA256: String
    private let lock = NSLock()
    private var running = true
    private var reads = 0
    private var failures: [String] = []
    private let done = DispatchSemaphore(value: 0)

    init(path: String, expectedSHA256: String) {
        self.path = path
        self.expectedSHA256 = expectedSHA256
    }

    func start() {
        Thread {
            while self.lock.withLock({ self.running }) {
                do {
                    let digest = try SHA256Digest.ofFile(self.path)
                    self.lock.withLock {
                        self.reads += 1
                        if digest != self.expectedSHA256 { self.failures.append("digest \(digest)") }
                    }
                } catch {
                    self.lock.withLock { self.failures.append("\(error)") }
                }
            }
            self.done.signal()
        }.start()
    }

    func stop() -> (reads: Int, failures: [String]) {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { (reads, failures) }
    }
}
