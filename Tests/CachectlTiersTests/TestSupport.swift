import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc

@testable import CachectlTiers

/// A temp directory with a cold store, a models dir and a state file; cleans up
/// every mount and zram device it made, whatever happened.
final class Scratch {
    let root: String
    var cold: String { root + "/cold" }
    var models: String { root + "/models" }
    var state: String { root + "/state/tiers.json" }
    var tiers: RAMTiers { RAMTiers(stateFile: TierStateFile(path: state)) }

    init() throws {
        root = try makeTemporaryDirectory("tiers-test")
        try Path.makeDirectory(cold)
    }

    func tierPath(_ name: String) -> String { root + "/tiers/" + name }

    /// Writes a file into the cold store and returns its bytes.
    @discardableResult
    func write(_ relative: String, bytes: [UInt8]) throws -> [UInt8] {
        let path = cold + "/" + relative
        try Path.makeDirectory(Path.directory(of: path))
        _ = try AtomicFile.write(bytes, to: path)
        return bytes
    }

    /// Builds an ollama store with a model whose blobs are named by their real SHA-256.
    func writeOllamaModel(name: String, tag: String, weights: [UInt8], under prefix: String = "ollama") throws
        -> [String]
    {
        let config = Array(#"{"model_format":"gguf","model_family":"llama"}"#.utf8)
        let template = Array("{{ .Prompt }}".utf8)
        var digests: [String] = []
        var layers: [String] = []
        for (bytes, type) in [(weights, "model"), (template, "template")] {
            let hex = try sha256(bytes)
            digests.append(hex)
            try write("\(prefix)/blobs/sha256-\(hex)", bytes: bytes)
            layers.append(
                #"{"mediaType":"application/vnd.ollama.image.\#(type)","digest":"sha256:\#(hex)","size":\#(bytes.count)}"#
            )
        }
        let configHex = try sha256(config)
        digests.append(configHex)
        try write("\(prefix)/blobs/sha256-\(configHex)", bytes: config)
        let manifest =
            #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:\#(configHex)","size":\#(config.count)},"layers":[\#(layers.joined(separator: ","))]}"#
        try write("\(prefix)/manifests/registry.ollama.ai/library/\(name)/\(tag)", bytes: Array(manifest.utf8))
        return digests
    }

    /// Unmounts and releases everything under root (zram devices are global).
    func cleanup() {
        if let state = try? TierStateFile(path: state).load() {
            for record in state.tiers {
                umount2(record.spec.path, Int32(MNT_DETACH))
                if let id = record.zramDevice {
                    let device = ZramDevice(id: id)
                    if device.exists {
                        try? device.reset()
                        try? device.hotRemove()
                    }
                }
            }
        }
        if let mounts = try? MountTable.mounted() {
            for entry in mounts.reversed() where entry.target.hasPrefix(root + "/") {
                umount2(entry.target, Int32(MNT_DETACH))
            }
        }
        _ = try? ExternalCommand(["rm", "-rf", "--one-file-system", root]).run()
    }

    deinit { cleanup() }
}

func sha256(_ bytes: [UInt8]) throws -> String {
    let digest = try SHA256Digest()
    try bytes.withUnsafeBytes { try digest.update($0) }
    return try digest.finish()
}

/// Deterministic bytes that do not compress (xorshift).
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}

/// Bytes that compress well: short repeating text with a counter.
func compressibleBytes(_ count: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(count + 64)
    var n = 0
    while out.count < count {
        out += Array("tensor block \(n % 97) weights 0000000000000000\n".utf8)
        n += 1
    }
    return Array(out.prefix(count))
}

func readAll(_ path: String) throws -> [UInt8] { try AtomicFile.readBytes(path) }
