import CachectlMount
import CachectlSystem
import Foundation
import Testing

@testable import CachectlTiers

@Suite struct CatalogTests {
    @Test func findsEveryLayoutAsOneModelEach() throws {
        let s = try Scratch()
        try s.write("tiny.gguf", bytes: randomBytes(1000, seed: 1))
        for i in 1...3 { try s.write("big/mix-0000\(i)-of-00003.gguf", bytes: randomBytes(500, seed: UInt64(i))) }
        try s.write("broken/half-00001-of-00002.gguf", bytes: [1, 2, 3])
        try s.write("hf/Qwen2-0.5B/config.json", bytes: Array("{}".utf8))
        try s.write("hf/Qwen2-0.5B/tokenizer.json", bytes: Array("{}".utf8))
        try s.write("hf/Qwen2-0.5B/model.safetensors", bytes: randomBytes(700, seed: 9))
        let weights = randomBytes(4096, seed: 42)
        let digests = try s.writeOllamaModel(name: "llama3", tag: "8b", weights: weights)

        let models = try ModelCatalog.scan(coldStore: s.cold)
        #expect(models.map(\.name) == ["big/mix", "broken/half", "hf/Qwen2-0.5B", "llama3:8b", "tiny"])

        let shards = try #require(models.first { $0.name == "big/mix" })
        #expect(shards.layout == .ggufShards && shards.files.count == 3 && shards.bytes == 1500 && shards.isComplete)
        let broken = try #require(models.first { $0.name == "broken/half" })
        #expect(broken.problem == "missing shard(s) 2 of 2")
        let hf = try #require(models.first { $0.name == "hf/Qwen2-0.5B" })
        #expect(hf.layout == .huggingface && hf.files.map(\.path).count == 3)

        let ollama = try #require(models.first { $0.name == "llama3:8b" })
        #expect(ollama.layout == .ollama && ollama.isComplete)
        #expect(ollama.files[0].path == "ollama/manifests/registry.ollama.ai/library/llama3/8b")
        // config first, then the layers, each with its digest as the expected sha256
        #expect(ollama.files.dropFirst().compactMap(\.sha256) == [digests[2], digests[0], digests[1]])
        #expect(
            ollama.files.dropFirst().map(\.path)
                == [digests[2], digests[0], digests[1]].map { "ollama/blobs/sha256-" + $0 })
        #expect(ollama.bytes == ollama.files.reduce(0) { $0 + $1.size })

        #expect(ModelCatalog.find("tiny.gguf", in: models)?.name == "tiny")
        #expect(ModelCatalog.find("big/mix-00002-of-00003.gguf", in: models)?.name == "big/mix")
        #expect(ModelCatalog.find("llama3", in: models) == nil)  // no :latest tag
        #expect(ModelCatalog.find("nope", in: models) == nil)
    }

    @Test func ollamaModelWithMissingBlobIsIncomplete() throws {
        let s = try Scratch()
        let digests = try s.writeOllamaModel(name: "phi3", tag: "latest", weights: randomBytes(100, seed: 3), under: "")
        unlink(s.cold + "/blobs/sha256-" + digests[0])
        let models = try ModelCatalog.scan(coldStore: s.cold)
        #expect(models.map(\.name) == ["phi3:latest"])
        #expect(models[0].problem == "missing blob blobs/sha256-\(digests[0])")
        #expect(ModelCatalog.find("phi3", in: models)?.name == "phi3:latest")
    }

    @Test func parsesAnOllamaManifest() throws {
        let json = """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:\(String(repeating: "a", count: 64))","size":485},
             "layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:\(String(repeating: "b", count: 64))","size":4661211424},
                       {"mediaType":"application/vnd.ollama.image.license","digest":"sha256:\(String(repeating: "a", count: 64))","size":485}]}
            """
        let manifest = try OllamaManifest(json: Array(json.utf8))
        #expect(
            manifest.blobs.map(\.digest) == [
                "sha256:" + String(repeating: "a", count: 64), "sha256:" + String(repeating: "b", count: 64),
            ])
        #expect(manifest.layers[0].size == 4_661_211_424)
        #expect(
            OllamaManifest.blobFile(for: manifest.layers[0].digest)?.file == "blobs/sha256-"
                + String(repeating: "b", count: 64))
        #expect(OllamaManifest.blobFile(for: "sha256:../../etc/passwd") == nil)
        #expect(OllamaManifest.blobFile(for: "md5:" + String(repeating: "a", count: 64)) == nil)
    }

    @Test(arguments: [
        ("llama3:8b", "registry.ollama.ai/library/llama3/8b", "llama3:8b"),
        ("llama3", "registry.ollama.ai/library/llama3/latest", "llama3:latest"),
        ("user/model:q4", "registry.ollama.ai/user/model/q4", "user/model:q4"),
        ("host.io/ns/m:v1", "host.io/ns/m/v1", "host.io/ns/m:v1"),
    ])
    func ollamaNames(text: String, manifest: String, display: String) throws {
        let name = try #require(OllamaName(parsing: text))
        #expect(name.manifestPath == "manifests/" + manifest)
        #expect(name.displayName == display)
        #expect(OllamaName(manifestPath: manifest) == name)
    }

    @Test func sha256MatchesKnownVector() throws {
        #expect(try sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(try sha256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}

@Suite struct SpecAndStrategyTests {
    @Test func validatesTierSpecs() throws {
        try TierSpec(name: "fast", type: .tmpfs, size: ByteSize(1 << 30)).validate()
        try TierSpec(name: "z_1", type: .zram, size: ByteSize(1 << 30), algorithm: "zstd").validate()
        #expect(TierSpec(name: "fast", type: .tmpfs, size: ByteSize(1 << 30)).path == "/run/cachectl/tiers/fast")
        #expect(TierSpec(name: "z", type: .zram, size: ByteSize(1 << 30)).filesystem == .ext4)
        #expect(TierSpec(name: "z", type: .zram, size: ByteSize(1 << 30)).rank == 20)

        let bad: [(TierSpec, String)] = [
            (TierSpec(name: "Fast", type: .tmpfs, size: ByteSize(1 << 30)), "tier name"),
            (TierSpec(name: "a/b", type: .tmpfs, size: ByteSize(1 << 30)), "tier name"),
            (TierSpec(name: "", type: .tmpfs, size: ByteSize(1 << 30)), "tier name"),
            (TierSpec(name: "t", type: .tmpfs, size: ByteSize(1 << 20)), "too small"),
            (TierSpec(name: "t", type: .tmpfs, size: ByteSize(1 << 30), path: "relative"), "absolute"),
            (TierSpec(name: "t", type: .tmpfs, size: ByteSize(1 << 30), path: "/a,size=1"), "absolute"),
            (TierSpec(name: "t", type: .tmpfs, size: ByteSize(1 << 30), path: "/a/../b"), ".."),
            (TierSpec(name: "t", type: .zram, size: ByteSize(1 << 30), algorithm: "gzip"), "unknown zram algorithm"),
            (TierSpec(name: "t", type: .zram, size: ByteSize(1 << 30), rank: -1), "rank"),
        ]
        for (spec, message) in bad {
            #expect { try spec.validate() } throws: {
                ($0 as? CachectlError).map { $0.code == .usage && $0.description.contains(message) } == true
            }
        }
    }

    @Test(
        "the fields a tier type does not take are each refused, in one rule for the CLI, the library and the YAML file")
    func inapplicableFieldsPerType() throws {
        func refused(_ type: TierType) -> [String] {
            TierSpec.inapplicable(to: type, algorithm: true, filesystem: true, device: true, remote: true).map {
                #expect($0.code == .usage)
                return "\($0.field?.description ?? "?"): \($0.message)"
            }
        }
        #expect(
            refused(.tmpfs) == [
                "algorithm: algorithm applies to zram tiers only",
                "filesystem: filesystem applies to zram and nvmeof tiers only",
                "device: device applies to nvmeof tiers only", "remote: remote applies to nvmeof tiers only",
            ])
        #expect(
            refused(.zram) == [
                "device: device applies to nvmeof tiers only", "remote: remote applies to nvmeof tiers only",
            ])
        #expect(refused(.nvmeof) == ["algorithm: algorithm applies to zram tiers only"])
        #expect(
            TierSpec.inapplicable(to: .tmpfs, algorithm: false, filesystem: false, device: false, remote: false).isEmpty
        )
        // A spec changed after init (init drops what the type does not take) is refused by validate.
        var spec = TierSpec(name: "t", type: .tmpfs, size: ByteSize(1 << 30))
        spec.algorithm = "lz4"
        #expect { try spec.validate() } throws: { ($0 as? CachectlError)?.field == ["algorithm"] }
    }

    let tiers = [
        PlacementStrategy.Candidate(name: "tmpfs", rank: 10, free: 10_000),
        PlacementStrategy.Candidate(name: "zram", rank: 20, free: 3_000),
        PlacementStrategy.Candidate(name: "nvme", rank: 30, free: 50_000),
    ]

    @Test func fastestFitTakesTheFastestTierWithRoom() {
        #expect(PlacementStrategy.fastestFit.choose(need: 2_000, from: tiers, cursor: 0).index == 0)
        #expect(PlacementStrategy.fastestFit.choose(need: 20_000, from: tiers, cursor: 0).index == 2)
        #expect(PlacementStrategy.fastestFit.choose(need: 60_000, from: tiers, cursor: 0).index == nil)
    }

    @Test func fillFirstTakesTheFullestTierThatFits() {
        #expect(PlacementStrategy.fillFirst.choose(need: 2_000, from: tiers, cursor: 0).index == 1)
        #expect(PlacementStrategy.fillFirst.choose(need: 5_000, from: tiers, cursor: 0).index == 0)
        #expect(PlacementStrategy.fillFirst.choose(need: 60_000, from: tiers, cursor: 0).index == nil)
    }

    @Test func roundRobinRotatesAndSkipsFullTiers() {
        var cursor = 0
        var picked: [Int] = []
        for _ in 0..<4 {
            let (index, next) = PlacementStrategy.roundRobin.choose(need: 5_000, from: tiers, cursor: cursor)
            picked.append(index ?? -1)
            cursor = next
        }
        #expect(picked == [0, 2, 0, 2])  // zram (3 000 free) never fits 5 000
        #expect(PlacementStrategy.roundRobin.choose(need: 1, from: [], cursor: 3).index == nil)
    }

    @Test(arguments: ["fastest-fit", "fill-first", "round-robin"])
    func strategyNamesParse(name: String) {
        #expect(PlacementStrategy(rawValue: name)?.rawValue == name)
    }
}

@Suite struct KernelTextTests {
    // Format from Documentation/admin-guide/blockdev/zram.rst (9 fields on 6.x).
    @Test func parsesMmStat() throws {
        let stats = try #require(
            ZramMemoryStats(
                mmStat: " 33554432  8388608  8650752        0  8650752      120        0        0        0\n"))
        #expect(stats.origDataSize == 33_554_432 && stats.comprDataSize == 8_388_608 && stats.memUsedTotal == 8_650_752)
        #expect(stats.samePages == 120)
        #expect(stats.compressionRatio == 4.0)
        #expect(ZramMemoryStats(mmStat: "0 0 0 0 0 0 0 0 0")?.compressionRatio == nil)
        #expect(ZramMemoryStats(mmStat: "garbage") == nil)
    }

    @Test func parsesCompAlgorithm() {
        let parsed = ZramDevice.parseAlgorithms("lzo [lzo-rle] lz4 zstd\n")
        #expect(parsed.available == ["lzo", "lzo-rle", "lz4", "zstd"])
        #expect(parsed.current == "lzo-rle")
    }

    /// Tiers read mounts through CachectlMount's libmount table; a fixture proc tree
    /// checks the fields they use, escaped mount points included.
    @Test func parsesMountinfo() throws {
        let s = try Scratch()
        let text = """
            24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k,nr_inodes=3083615,mode=755
            88 27 0:51 / /run/cachectl/tiers/my\\040tier rw,nosuid,nodev,noatime shared:40 - tmpfs cachectl-fast rw,size=65536k,mode=755
            90 27 252:1 / /run/cachectl/tiers/z rw,noatime - ext4 /dev/zram1 rw,discard

            """
        try Path.makeDirectory(s.root + "/proc/self")
        _ = try AtomicFile.write(text, to: s.root + "/proc/self/mountinfo")
        let roots = KernelRoots.fixture(s.root)
        let entries = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")
        #expect(entries.count == 3)
        #expect(entries[1].target == "/run/cachectl/tiers/my tier")
        #expect(entries[1].fstype == "tmpfs" && entries[1].source == "cachectl-fast")
        #expect(
            OptionString.split(entries[1].options).contains("size=65536k")
                && OptionString.split(entries[1].options).contains("noatime"))
        #expect(entries[2].source == "/dev/zram1" && OptionString.split(entries[2].options).contains("discard"))
        #expect(try MountTable.entry(at: "/run/cachectl/tiers/my tier", roots: roots)?.source == "cachectl-fast")
        #expect(try MountTable.entry(at: "/run/cachectl/tiers/none", roots: roots) == nil)
    }

    @Test func stateRoundTripsAndDefaultsWhenMissing() throws {
        let s = try Scratch()
        let file = TierStateFile(path: s.state)
        #expect(try file.load() == TierState())
        var state = TierState()
        state.tiers = [
            TierRecord(spec: TierSpec(name: "fast", type: .tmpfs, size: ByteSize(1 << 30)), createdPath: true)
        ]
        state.placements["llama3:8b"] = PlacementRecord(tier: "fast", files: ["a", "b"], bytes: 10)
        state.pins["llama3:8b"] = "fast"
        #expect(try file.save(state) == true)
        #expect(try file.save(state) == false)  // unchanged: not written again
        #expect(try file.load() == state)
        let text = try AtomicFile.readText(s.state)
        #expect(text.contains("\"round_robin_next\"") && text.contains("\"zram_device\"") == false)
    }
}
