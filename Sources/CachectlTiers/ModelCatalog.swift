import CachectlSystem
import FoundationEssentials
import Glibc

/// How a model is stored.
public enum ModelLayout: String, Codable, Sendable {
    /// One `.gguf` file.
    case gguf
    /// `name-00001-of-00004.gguf` ... all shards of one model.
    case ggufShards = "gguf-shards"
    /// An ollama manifest and the blobs it names.
    case ollama
    /// A Hugging Face directory: safetensors weights plus config files.
    case huggingface
}

/// One file of a model, by its path relative to the cold store (the same
/// relative path names its link in the models dir and its copy in a tier).
public struct ModelFile: Codable, Sendable, Equatable, Hashable {
    public var path: String
    public var size: UInt64
    /// Expected SHA-256 (hex) when the layout names it: ollama blobs.
    public var sha256: String?

    public init(path: String, size: UInt64, sha256: String? = nil) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// A model found in the cold store.
public struct Model: Codable, Sendable, Equatable {
    public var name: String
    public var layout: ModelLayout
    public var files: [ModelFile]
    /// Why the model cannot be placed (a missing shard or blob); nil when complete.
    public var problem: String?

    public var bytes: UInt64 { files.reduce(0) { $0 + $1.size } }
    public var isComplete: Bool { problem == nil }
}

/// Finds the models in a cold store: single and sharded GGUF, ollama stores and
/// Hugging Face directories, anywhere up to a few directories deep.
public enum ModelCatalog {
    static let maximumDepth = 6

    public static func scan(coldStore: String) throws -> [Model] {
        var models: [Model] = []
        try walk(root: coldStore, relative: "", depth: 0, into: &models)
        // A name seen twice (the same GGUF name in two folders cannot be: names carry
        // the folder; two ollama stores can) keeps the first, in path order.
        var seen = Set<String>()
        return models.sorted { $0.name < $1.name }.filter { seen.insert($0.name).inserted }
    }

    /// The model called `name`: exact, `NAME` for ollama's `NAME:latest`, or a GGUF file name.
    public static func find(_ name: String, in models: [Model]) -> Model? {
        if let exact = models.first(where: { $0.name == name }) { return exact }
        if !name.contains(":"),
            let latest = models.first(where: { $0.layout == .ollama && $0.name == name + ":latest" })
        {
            return latest
        }
        if name.hasSuffix(".gguf") {
            let stem = String(name.dropLast(5))
            let base = ShardName(fileName: stem + ".gguf").map(\.stem) ?? stem
            return models.first { ($0.layout == .gguf || $0.layout == .ggufShards) && $0.name == base }
        }
        return nil
    }

    private static func walk(root: String, relative: String, depth: Int, into models: inout [Model]) throws {
        let dir = relative.isEmpty ? root : root + "/" + relative
        let entries = try listDirectory(dir)
        let names = Set(entries.map(\.name))
        func rel(_ name: String) -> String { relative.isEmpty ? name : relative + "/" + name }

        if entries.contains(where: { $0.name == "manifests" && $0.isDirectory }) && names.contains("blobs") {
            models += try OllamaStore.models(root: root, storeRelative: relative)
            return
        }
        let files = entries.filter { !$0.isDirectory }
        if names.contains("config.json"),
            files.contains(where: { $0.name.hasSuffix(".safetensors") || $0.name.hasSuffix(".safetensors.index.json") })
        {
            var all: [ModelFile] = []
            try collectFiles(root: root, relative: relative, depth: depth, into: &all)
            let name = relative.isEmpty ? Path.lastComponent(of: root) : relative
            models.append(Model(name: name, layout: .huggingface, files: all.sorted { $0.path < $1.path }))
            return
        }
        models += ggufModels(files.map { (rel($0.name), $0.size) }, directory: relative)
        guard depth < maximumDepth else { return }
        for entry in entries where entry.isDirectory {
            try walk(root: root, relative: rel(entry.name), depth: depth + 1, into: &models)
        }
    }

    /// Groups GGUF files of one directory into single files and shard sets.
    static func ggufModels(_ files: [(path: String, size: UInt64)], directory: String) -> [Model] {
        var models: [Model] = []
        var shardSets: [String: [(ShardName, ModelFile)]] = [:]
        for (path, size) in files where path.hasSuffix(".gguf") {
            let fileName = Path.lastComponent(of: path)
            let prefix = directory.isEmpty ? "" : directory + "/"
            if let shard = ShardName(fileName: fileName) {
                shardSets[prefix + shard.stem, default: []].append((shard, ModelFile(path: path, size: size)))
            } else {
                models.append(
                    Model(
                        name: prefix + String(fileName.dropLast(5)), layout: .gguf,
                        files: [ModelFile(path: path, size: size)]))
            }
        }
        for (name, shards) in shardSets {
            let sorted = shards.sorted { $0.0.index < $1.0.index }
            let count = sorted[0].0.count
            let have = Set(sorted.map(\.0.index))
            var problem: String?
            if sorted.contains(where: { $0.0.count != count }) {
                problem = "shards disagree on their count"
            } else if have != Set(1...count) {
                let missing = (1...count).filter { !have.contains($0) }
                problem = "missing shard(s) \(missing.map(String.init).joined(separator: ", ")) of \(count)"
            }
            models.append(Model(name: name, layout: .ggufShards, files: sorted.map(\.1), problem: problem))
        }
        return models
    }

    private static func collectFiles(root: String, relative: String, depth: Int, into files: inout [ModelFile]) throws {
        let dir = relative.isEmpty ? root : root + "/" + relative
        for entry in try listDirectory(dir) {
            let path = relative.isEmpty ? entry.name : relative + "/" + entry.name
            if entry.isDirectory {
                if depth < maximumDepth { try collectFiles(root: root, relative: path, depth: depth + 1, into: &files) }
            } else {
                files.append(ModelFile(path: path, size: entry.size))
            }
        }
    }

    struct Entry {
        var name: String
        var isDirectory: Bool
        var size: UInt64
    }

    /// Regular files and directories (symlinks followed), hidden names skipped, sorted.
    static func listDirectory(_ dir: String) throws(CachectlError) -> [Entry] {
        var entries: [Entry] = []
        for name in try Path.entries(of: dir) {
            if name.hasPrefix(".") { continue }
            var st = stat()
            guard stat(dir + "/" + name, &st) == 0 else { continue }
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR {
                entries.append(Entry(name: name, isDirectory: true, size: 0))
            } else if type == S_IFREG {
                entries.append(Entry(name: name, isDirectory: false, size: UInt64(st.st_size)))
            }
        }
        return entries.sorted { $0.name < $1.name }
    }
}
