import CachectlFSCache
import CachectlPlan
import CachectlSystem
import CachectlTiers
import Foundation
import Testing

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var dir = Path.directory(of: #filePath)
    while dir != "/" && !FileManager.default.fileExists(atPath: dir + "/Package.swift") {
        dir = Path.directory(of: dir)
    }
    return dir
}()

func parse(_ yaml: String) throws(ConfigErrors) -> MachineConfig {
    try ConfigFile.parse(yaml, file: "test.yaml").config
}

func errors(_ yaml: String) -> [ConfigError] {
    do {
        _ = try ConfigFile.parse(yaml, file: "test.yaml")
        return []
    } catch {
        return error.errors
    }
}

@Suite struct ConfigDecodingTests {
    @Test func shippedExampleDecodesToWhatItSays() throws {
        let file = try ConfigFile.load(repositoryRoot + "/integration/examples/cachectl.yaml")
        let config = file.config
        #expect(config.cache?.dir == "/var/cache/fscache")
        #expect(config.cache?.tag == "models")
        #expect(config.shares.map(\.mountpoint) == ["/mnt/models"])
        #expect(config.shares.first?.readahead == ByteSize(16 << 20))
        #expect(config.tiers.map(\.name) == ["fast", "squeezed"])
        #expect(config.tiers[1].spec.algorithm == "zstd")
        #expect(config.tiers[1].spec.rank == 20)
        #expect(config.models?.pinned == ["llama3:8b": "fast"])
        #expect(config.models?.strategy == .fastestFit)
        #expect(config.warm.map(\.name) == ["boot", "nightly"])
        #expect(config.warm[1].into == .disk)
        #expect(config.warm[1].onApply == false)
    }

    @Test func emptyFileIsAnEmptyState() throws {
        let config = try parse("")
        #expect(config.cache == nil && config.tiers.isEmpty && config.warm.isEmpty)
    }

    @Test func unknownKeyIsRejectedWithLineAndColumnAndASuggestion() {
        let found = errors(
            """
            cache:
              dir: /var/cache/fscache
              bcul: 7
            """)
        #expect(found.count == 1)
        let error = found.first
        #expect(error?.line == 3)
        #expect(error?.column == 3)
        #expect(error?.path == "cache.bcul")
        #expect(error?.message.contains("did you mean bcull?") == true)
        #expect(error?.description.hasPrefix("test.yaml:3:3: cache.bcul: unknown key 'bcul'") == true)
    }

    @Test(arguments: [
        ("tiers:\n  - name: a\n    type: tmpfs\n    size: 1G\n    colour: red\n", 5, 5, "tiers[0].colour"),
        ("shares:\n  - mountpoint: /mnt/m\n    fcs: true\n", 3, 5, "shares[0].fcs"),
        ("warm:\n  - name: a\n    files: [/x]\n    onapply: false\n", 4, 5, "warm[0].onapply"),
        (
            "cache: {dir: /c, resume_thresholds: {blocks: 1, files: 2, inodes: 3}}\n", 1, 59,
            "cache.resume_thresholds.inodes"
        ),
        ("tier:\n  - name: a\n", 1, 1, "tier"),
    ])
    func unknownKeysAnywhere(yaml: String, line: Int, column: Int, path: String) {
        let found = errors(yaml)
        #expect(found.map(\.path) == [path])
        #expect(found.first?.line == line)
        #expect(found.first?.column == column)
    }

    @Test(arguments: [
        ("cache:\n  brun: ten\n", 2, 9, "cache.brun", "expected an integer, got 'ten'"),
        ("cache:\n  nocull: \"yes\"\n", 2, 11, "cache.nocull", "expected true or false"),
        (
            "tiers:\n  - name: a\n    type: ramfs\n    size: 1G\n", 3, 11, "tiers[0].type",
            "'ramfs' is not one of: tmpfs, zram, nvmeof"
        ),
        ("tiers:\n  - name: a\n    type: tmpfs\n    size: 8Q\n", 4, 11, "tiers[0].size", "not a size: 8Q"),
        ("tiers:\n  - name: a\n    type: tmpfs\n", 2, 5, "tiers[0]", "missing required key 'size'"),
        ("shares: /mnt/models\n", 1, 9, "shares", "expected a list"),
        (
            "models:\n  dir: /m\n  cold_store: /c\n  strategy: random\n", 4, 13, "models.strategy",
            "not one of: fastest-fit, fill-first, round-robin"
        ),
        ("warm:\n  - name: a\n    files: /x\n", 3, 12, "warm[0].files", "expected a list"),
        ("cache:\n  dir: [a, b]\n", 2, 8, "cache.dir", "expected a string"),
    ])
    func wrongTypesNameLineColumnAndWhatWasExpected(yaml: String, line: Int, column: Int, path: String, message: String)
    {
        let found = errors(yaml)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.path == path)
        #expect(found.first?.line == line)
        #expect(found.first?.column == column)
        #expect(found.first?.message.contains(message) == true, "\(found.first?.message ?? "")")
    }

    @Test func syntaxErrorsHaveAPlaceToo() {
        let found = errors("cache:\n  dir: /x\n bad indent: [\n")
        #expect(found.count == 1)
        #expect(found.first?.line != nil)
        #expect(found.first?.message.hasPrefix("YAML syntax") == true)
    }

    @Test func everyProblemIsReportedAtOnceInLineOrder() {
        let found = errors(
            """
            shares:
              - mountpoint: /mnt/a
                fcs: true
            tiers:
              - name: a
                type: tmpfs
                size: 1G
                sise: 2G
            """)
        #expect(found.map(\.line) == [3, 8])
    }

    /// Values go through the same validate() as `cachectl cache setup`, `tier create`, `warm`.
    @Test(arguments: [
        (
            "cache:\n  dir: /c\n  brun: 5\n  bcull: 7\n", "cache.brun",
            "invalid brun \"5\": need 0 <= bstop < bcull < brun"
        ),
        ("cache:\n  dir: relative\n", "cache.dir", "must be an absolute path"),
        ("cache:\n  dir: /c\n  culltable: 30\n", "cache.culltable", "12...20"),
        ("tiers:\n  - name: Bad Name\n    type: tmpfs\n    size: 1G\n", "tiers[0].name", "tier name must be"),
        ("tiers:\n  - name: a\n    type: tmpfs\n    size: 1M\n", "tiers[0].size", "too small"),
        (
            "tiers:\n  - name: a\n    type: tmpfs\n    size: 1G\n    algorithm: zstd\n", "tiers[0].algorithm",
            "zram tiers only"
        ),
        (
            "tiers:\n  - {name: a, type: tmpfs, size: 1G}\n  - {name: a, type: tmpfs, size: 1G, path: /x}\n",
            "tiers[1].name", "listed twice"
        ),
        ("shares:\n  - mountpoint: /m\n    readahead: 1K\n", "shares[0].readahead", "out of range"),
        ("shares:\n  - mountpoint: m\n", "shares[0].mountpoint", "absolute"),
        ("shares:\n  - mountpoint: /m\n    nconnect: 17\n", "shares[0].nconnect", "nconnect 17 out of range"),
        ("shares:\n  - mountpoint: /m\n    rsize: 1000\n", "shares[0].rsize", "out of range"),
        ("warm:\n  - name: a\n    files: [/x]\n    jobs: 0\n", "warm[0].jobs", "jobs must be between"),
        ("warm:\n  - name: a\n    files: [/x]\n    chunk: 130K\n", "warm[0].chunk", "multiple of the page size"),
        ("warm:\n  - name: a b\n    files: [/x]\n", "warm[0].name", "warm list name"),
        ("warm:\n  - name: a\n    models: [m]\n", "warm[0].models", "needs the models section"),
        ("warm:\n  - name: a\n", "warm[0]", "at least one file or model"),
        (
            "nvmeof:\n  exports:\n    - {name: ram0, size: 64M, address: 10.0.0.1}\n",
            "nvmeof.exports[0].allowed_hosts", "name the hosts"
        ),
        (
            "nvmeof:\n  exports:\n    - {name: Ram0, size: 64M, address: 10.0.0.1, allow_any_host: true}\n",
            "nvmeof.exports[0].name", "export name must be"
        ),
        (
            "nvmeof:\n  exports:\n    - {name: r, size: 64M, address: host.example, allow_any_host: true}\n",
            "nvmeof.exports[0].address", "not a host name"
        ),
        (
            "nvmeof:\n  connections:\n    - {nqn: nqn.2014-08.org.cachectl:a, address: 10.0.0.1, port: 70000}\n",
            "nvmeof.connections[0].port", "1-65535"
        ),
        (
            "tiers:\n  - {name: n, type: tmpfs, size: 1G, device: /dev/nvme1n1}\n", "tiers[0].device",
            "nvmeof tiers only"
        ),
        (
            "tiers:\n  - {name: n, type: tmpfs, size: 1G, remote: {nqn: a, address: 10.0.0.1}}\n", "tiers[0].remote",
            "nvmeof tiers only"
        ),
        (
            "tiers:\n  - {name: n, type: nvmeof, size: 1G, remote: {nqn: a}}\n", "tiers[0].remote.address",
            "needs an address"
        ),
        (
            "tiers:\n  - {name: n, type: nvmeof, size: 1G, remote: {nqn: a, address: 10.0.0.1, port: 70000}}\n",
            "tiers[0].remote.port", "1...65535"
        ),
        (
            "tiers:\n  - {name: n, type: nvmeof, size: 1G, remote: {nqn: a, transport: loop, port: 1}}\n",
            "tiers[0].remote.port", "takes no port"
        ),
        (
            "tiers:\n  - {name: n, type: nvmeof, size: 1G, device: /dev/nvme1n1, remote: {nqn: a, address: 10.0.0.1}}\n",
            "tiers[0].remote", "not both"
        ),
        ("version: 2\n", "version", "unsupported version"),
    ])
    func valuesAreValidatedByTheModulesOwnRules(yaml: String, path: String, message: String) {
        let found = errors(yaml)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.path == path)
        #expect(found.first?.line != nil)
        #expect(found.first?.message.contains(message) == true, "\(found.first?.message ?? "")")
    }

    @Test func anNVMeOFTierNamesTheExportItConnectsTo() throws {
        let config = try parse(
            "tiers:\n  - name: lent\n    type: nvmeof\n    size: 1G\n    remote: {nqn: nqn.2014-08.org.cachectl:lend, address: 10.77.0.1, host_nqn: nqn.2014-08.org.cachectl:client}\n"
        )
        #expect(
            config.tiers[0].spec.remote
                == RemoteNamespace(
                    nqn: "nqn.2014-08.org.cachectl:lend", transport: "tcp", address: "10.77.0.1", port: 4420,
                    hostNQN: "nqn.2014-08.org.cachectl:client"))
        #expect(config.tiers[0].spec.device == nil)
    }

    @Test func lineInjectionIntoCachefilesdConfIsRefused() {
        let found = errors("cache:\n  dir: \"/c\\nnocull\"\n")
        #expect(found.first?.message.contains("newlines or control characters") == true)
    }

    @Test func defaultsMatchTheSingleCommands() throws {
        let config = try parse("cache: {}\ntiers:\n  - {name: z, type: zram, size: 1G}\nshares:\n  - mountpoint: /m\n")
        #expect(config.cache == CachefilesdConfig())
        #expect(config.tiers[0].spec == TierSpec(name: "z", type: .zram, size: ByteSize(1 << 30)))
        #expect(config.shares[0].fsc == true)
    }

    @Test func anchorsAndAliasesWork() throws {
        let config = try parse(
            """
            tiers:
              - &t {name: a, type: tmpfs, size: 1G}
            warm:
              - name: a
                files: &f [/x, /y]
              - name: b
                files: *f
            """)
        #expect(config.warm[1].files == ["/x", "/y"])
    }

    @Test func onlyFilterParses() throws {
        let filter = try ActionFilter(parsing: ["warm:boot", "tiers"])
        #expect(filter.sections.count == 2)
        #expect(throws: CachectlError.self) { try ActionFilter(parsing: ["bogus"]) }
    }
}
