import CachectlSystem
import FoundationEssentials
import Glibc

/// An ollama image manifest (`manifests/registry.ollama.ai/library/NAME/TAG`):
/// OCI-style JSON whose config and layers name blobs by digest.
public struct OllamaManifest: Decodable, Sendable, Equatable {
    public struct Layer: Decodable, Sendable, Equatable {
        public var mediaType: String?
        public var digest: String
        public var size: UInt64?
    }

    public var schemaVersion: Int?
    public var config: Layer?
    public var layers: [Layer]

    public init(json: [UInt8]) throws {
        self = try JSONDecoder().decode(OllamaManifest.self, from: Data(json))
    }

    /// Config first, then layers, each digest once.
    public var blobs: [Layer] {
        var seen = Set<String>()
        return ([config].compactMap { $0 } + layers).filter { seen.insert($0.digest).inserted }
    }

    /// `sha256:abc...` → (`blobs/sha256-abc...`, `abc...`); nil for anything else,
    /// so a manifest cannot name a path outside the blobs directory.
    public static func blobFile(for digest: String) -> (file: String, hex: String)? {
        guard digest.hasPrefix("sha256:") else { return nil }
        let hex = String(digest.dropFirst(7))
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        return ("blobs/sha256-" + hex, hex)
    }
}

/// Model names as ollama prints them, mapped to manifest paths.
public struct OllamaName: Sendable, Equatable {
    public static let defaultRegistry = "registry.ollama.ai"
    public static let defaultNamespace = "library"

    public var registry: String
    public var namespace: String
    public var model: String
    public var tag: String

    /// From a manifest path `HOST/NAMESPACE/MODEL/TAG` under `manifests/`.
    public init?(manifestPath: String) {
        let parts = manifestPath.split(separator: "/").map(String.init)
        guard parts.count == 4 else { return nil }
        registry = parts[0]
        namespace = parts[1]
        model = parts[2]
        tag = parts[3]
    }

    /// `llama3:8b`, `user/model`, `host/user/model:tag` (tag defaults to latest).
    public init?(parsing text: String) {
        var nameParts = Substring(text)
        var tag = "latest"
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("/") {
            tag = String(text[text.index(after: colon)...])
            nameParts = text[..<colon]
        }
        let parts = nameParts.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !tag.isEmpty, !parts.isEmpty, parts.count <= 3,
            parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
        else { return nil }
        registry = parts.count == 3 ? parts[0] : Self.defaultRegistry
        namespace = parts.count >= 2 ? parts[parts.count - 2] : Self.defaultNamespace
        model = parts[parts.count - 1]
        self.tag = tag
    }

    /// The short form ollama shows: `llama3:8b`, `user/model:tag`, `host/user/model:tag`.
    public var displayName: String {
        if registry == Self.defaultRegistry {
            return (namespace == Self.defaultNamespace ? "" : namespace + "/") + model + ":" + tag
        }
        return "\(registry)/\(namespace)/\(model):\(tag)"
    }

    public var manifestPath: String { "manifests/\(registry)/\(namespace)/\(model)/\(tag)" }
}

/// Reads every manifest of an ollama store into models.
enum OllamaStore {
    /// - Parameters:
    ///   - root: the cold store.
    ///   - storeRelative: the ollama store (`manifests/`, `blobs/`) relative to root.
    static func models(root: String, storeRelative: String) throws -> [Model] {
        let store = storeRelative.isEmpty ? root : root + "/" + storeRelative
        let prefix = storeRelative.isEmpty ? "" : storeRelative + "/"
        var models: [Model] = []
        for manifestRelative in try manifestPaths(store + "/manifests", relative: "", depth: 0) {
            guard let name = OllamaName(manifestPath: manifestRelative) else { continue }
            let manifestPath = "manifests/" + manifestRelative
            let bytes: [UInt8]
            do {
                bytes = try readManifest(store: store, relative: manifestPath)
            } catch {
                models.append(
                    Model(
                        name: name.displayName, layout: .ollama,
                        files: [ModelFile(path: prefix + manifestPath, size: 0)],
                        problem: "unreadable manifest: \(error)"))
                continue
            }
            var files = [ModelFile(path: prefix + manifestPath, size: UInt64(bytes.count))]
            var problem: String?
            do {
                let manifest = try OllamaManifest(json: bytes)
                for layer in manifest.blobs {
                    guard let blob = OllamaManifest.blobFile(for: layer.digest) else {
                        problem = "unsupported digest \(layer.digest)"
                        continue
                    }
                    var st = stat()
                    if stat(store + "/" + blob.file, &st) != 0 {
                        problem = "missing blob \(blob.file)"
                        files.append(ModelFile(path: prefix + blob.file, size: layer.size ?? 0, sha256: blob.hex))
                        continue
                    }
                    if let expected = layer.size, expected != UInt64(st.st_size) {
                        problem = "blob \(blob.file) is \(st.st_size) bytes; the manifest says \(expected)"
                    }
                    files.append(ModelFile(path: prefix + blob.file, size: UInt64(st.st_size), sha256: blob.hex))
                }
            } catch {
                problem = "unreadable manifest: \(error)"
            }
            models.append(Model(name: name.displayName, layout: .ollama, files: files, problem: problem))
        }
        return models
    }

    /// Largest manifest read: real ones are a few hundred bytes.
    static let manifestLimit = 1 << 20

    /// A manifest's bytes, read without following any link below the store and
    /// only from a regular file of at most ``manifestLimit`` bytes (the store may
    /// belong to another user: a link to a root-only file, a FIFO or a huge file
    /// there is refused, not read).
    static func readManifest(store: String, relative: String) throws -> [UInt8] {
        let (dir, name) = try HeldDirectory(store).parent(of: relative)
        let file = try dir.openFile(name, flags: O_RDONLY | O_NONBLOCK)
        let st = try file.status()
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw CachectlError.failed("read manifest", path: file.path, hint: "not a regular file")
        }
        guard st.st_size <= manifestLimit else {
            throw CachectlError.failed(
                "read manifest", path: file.path, hint: "\(st.st_size) bytes; a manifest is at most \(manifestLimit)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < bytes.count {
            let n = try bytes.withUnsafeMutableBytes { raw in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[done...]), at: Int64(done))
            }
            if n == 0 { break }
            done += n
        }
        return Array(bytes[0..<done])
    }

    private static func manifestPaths(_ dir: String, relative: String, depth: Int) throws -> [String] {
        var paths: [String] = []
        for entry in try ModelCatalog.listDirectory(dir + (relative.isEmpty ? "" : "/" + relative)) {
            let path = relative.isEmpty ? entry.name : relative + "/" + entry.name
            if entry.isDirectory {
                if depth < 3 { paths += try manifestPaths(dir, relative: path, depth: depth + 1) }
            } else if depth == 3 {
                paths.append(path)
            }
        }
        return paths
    }
}
