import CachectlFSCache
import CachectlMount
import CachectlNVMeOF
import CachectlSystem
import CachectlTiers
import FoundationEssentials

/// A YAML file read, decoded and validated: the desired state, and the node
/// tree kept to point at the line and column of any value.
public struct ConfigFile {
    public let path: String
    public let config: MachineConfig
    private let root: YAMLNode?

    /// Reads, decodes (unknown keys and wrong types are errors) and validates
    /// with the same rules as the single commands. Nothing is changed.
    public static func load(_ path: String) throws(ConfigErrors) -> ConfigFile {
        let text: String
        do {
            text = try InputBounds.readConfig(path)
        } catch {
            throw ConfigErrors([error.bounded])
        }
        return try parse(text, file: path)
    }

    /// Parses and validates `text`; refuses more than ``InputBounds/maxConfigBytes``
    /// before parsing, and every message is bounded (no value echoed in full).
    public static func parse(_ text: String, file: String) throws(ConfigErrors) -> ConfigFile {
        guard text.utf8.count <= InputBounds.maxConfigBytes else {
            throw ConfigErrors([
                ConfigError(
                    file: file, path: "",
                    message:
                        "the configuration is \(ByteSize.format(UInt64(text.utf8.count))); it may be at most \(ByteSize.format(UInt64(InputBounds.maxConfigBytes)))"
                )
            ])
        }
        do {
            return try parseUnbounded(text, file: file)
        } catch {
            var shown = error.errors.prefix(InputBounds.maxErrorsShown).map(\.bounded)
            if error.errors.count > shown.count {
                shown.append(
                    ConfigError(
                        file: file, path: "",
                        message: "\(error.errors.count - shown.count) more problem(s) not shown; fix these first"))
            }
            throw ConfigErrors(shown)
        }
    }

    private static func parseUnbounded(_ text: String, file: String) throws(ConfigErrors) -> ConfigFile {
        let root: YAMLNode?
        do {
            root = try YAMLComposer.compose(text)
        } catch {
            throw ConfigErrors([
                ConfigError(
                    file: file, line: error.mark?.line, column: error.mark?.column, path: "", message: error.message)
            ])
        }
        guard let root else {
            // An empty file asks for nothing: a valid, empty state.
            return ConfigFile(path: file, config: MachineConfig(), root: nil)
        }
        let config = try YAMLNodeDecoder(file: file).decode(MachineConfig.self, from: root)
        let loaded = ConfigFile(path: file, config: config, root: root)
        let problems = loaded.validationErrors()
        if !problems.isEmpty { throw ConfigErrors(problems) }
        return loaded
    }

    /// The keys the decoder accepts in each mapping of `yaml` (paths like `tiers[]`).
    static func acceptedKeys(_ yaml: String) throws -> [String: Set<String>] {
        guard let root = try YAMLComposer.compose(yaml) else { return [:] }
        return try YAMLNodeDecoder(file: "-").acceptedKeys(MachineConfig.self, from: root)
    }

    /// An error at the node `path` names (or the nearest node above it that exists).
    func error(_ path: FieldPath, _ message: String) -> ConfigError {
        var node = root
        var keyNode: YAMLNode?
        for step in path.components {
            switch step {
            case .key(let name):
                guard case .mapping(let mapping)? = node,
                    let pair = mapping.pairs.first(where: { $0.key.string == name })
                else { continue }
                keyNode = pair.key
                node = pair.value
            case .index(let index):
                guard case .sequence(let sequence)? = node, index < sequence.items.count else { continue }
                keyNode = nil
                node = sequence.items[index]
            }
        }
        // A scalar is pointed at itself; a mapping or list at its key, which reads better.
        let mark: YAMLMark?
        if case .scalar? = node { mark = node?.mark } else { mark = keyNode?.mark ?? node?.mark }
        return ConfigError(
            file: self.path, line: mark?.line, column: mark?.column, path: path.description, message: message)
    }

    /// A library's input error about the value at `at` (its field, or `at` itself).
    func error(_ at: FieldPath, _ error: CachectlError) -> ConfigError {
        self.error(at + (error.field ?? []), error.message)
    }

    /// Every rule the single commands apply to these values, plus the rules of
    /// the file as a whole (unique names, references that resolve).
    func validationErrors() -> [ConfigError] {
        var errors: [ConfigError] = []
        if config.version != 1 {
            errors.append(error(["version"], "unsupported version \(config.version); this cachectl reads version 1"))
        }

        if let cache = config.cache {
            do {
                try cache.validate()
            } catch {
                errors.append(self.error(["cache"], error))
            }
        }

        var mountpoints: Set<String> = []
        for (i, share) in config.shares.enumerated() {
            let at: FieldPath = ["shares", .index(i)]
            guard share.mountpoint.hasPrefix("/"), InputBounds.controlCharacter(in: share.mountpoint) == nil else {
                errors.append(
                    error(
                        at + ["mountpoint"],
                        "must be an absolute path without control characters: \(InputBounds.show(share.mountpoint))"))
                continue
            }
            if !mountpoints.insert(
                share.mountpoint.count > 1 && share.mountpoint.hasSuffix("/")
                    ? String(share.mountpoint.dropLast()) : share.mountpoint
            ).inserted {
                errors.append(error(at + ["mountpoint"], "\(share.mountpoint) is listed twice"))
            }
            // One request a setting, so each bad one is reported.
            for request in [
                FscSwitch(enable: share.fsc, mountpoints: [share.mountpoint], readahead: share.readahead),
                FscSwitch(enable: share.fsc, mountpoints: [share.mountpoint], nconnect: share.nconnect),
                FscSwitch(enable: share.fsc, mountpoints: [share.mountpoint], rsize: share.rsize),
            ] {
                do { try request.validate() } catch { errors.append(self.error(at, error)) }
            }
        }

        var tierNames: Set<String> = []
        var tierPaths: Set<String> = []
        for (i, tier) in config.tiers.enumerated() {
            let at: FieldPath = ["tiers", .index(i)]
            do {
                try tier.spec.validate()
            } catch {
                errors.append(self.error(at, error))
            }
            // TierSpec drops what does not apply to the type; in a file that is a mistake worth saying.
            for wrong in TierSpec.inapplicable(
                to: tier.type, algorithm: tier.algorithm != nil, filesystem: tier.filesystem != nil,
                device: tier.device != nil,
                remote: tier.remote != nil)
            {
                errors.append(self.error(at, wrong))
            }
            if tier.remote != nil, tier.device != nil {
                errors.append(error(at + ["remote"], "give device or remote, not both"))
            }
            if !tierNames.insert(tier.name).inserted {
                errors.append(error(at + ["name"], "tier \(tier.name) is listed twice"))
            }
            if tier.state == .present, !tierPaths.insert(tier.spec.path).inserted {
                errors.append(error(at + ["path"], "two tiers use the path \(tier.spec.path)"))
            }
        }

        if let models = config.models {
            for (key, value) in [("dir", models.dir), ("cold_store", models.coldStore)]
            where !value.hasPrefix("/") || InputBounds.controlCharacter(in: value) != nil {
                errors.append(
                    error(
                        ["models", .key(key)],
                        "must be an absolute path without control characters (newlines, tabs): \(InputBounds.show(value))"
                    ))
            }
            let absent = Set(config.tiers.filter { $0.state == .absent }.map(\.name))
            for (model, tier) in models.pinned.sorted(by: { $0.key < $1.key }) {
                do {
                    try TierSpec.validateName(tier)
                    if absent.contains(tier) {
                        errors.append(error(["models", "pinned", .key(model)], "tier \(tier) is declared absent"))
                    }
                } catch {
                    errors.append(self.error(["models", "pinned", .key(model)], error.message))
                }
            }
            for (i, model) in models.promote.enumerated() where models.pinned[model] != nil {
                errors.append(error(["models", "promote", .index(i)], "\(model) is also pinned; list it in one place"))
            }
        }

        if let nvmeof = config.nvmeof {
            var names: Set<String> = []
            for (i, export) in nvmeof.exports.enumerated() {
                let at: FieldPath = ["nvmeof", "exports", .index(i)]
                do {
                    if export.state == .present {
                        try export.spec.validate()
                    } else {
                        try ExportSpec.validateName(export.name)
                    }
                } catch {
                    errors.append(self.error(at, error))
                }
                if !names.insert(export.name).inserted {
                    errors.append(error(at + ["name"], "export \(export.name) is listed twice"))
                }
            }
            for (i, connection) in nvmeof.connections.enumerated() {
                do {
                    try connection.spec.validate()
                } catch {
                    errors.append(self.error(["nvmeof", "connections", .index(i)], error))
                }
            }
        }

        var warmNames: Set<String> = []
        for (i, list) in config.warm.enumerated() {
            let at: FieldPath = ["warm", .index(i)]
            if !WarmListName.isValid(list.name) {
                errors.append(
                    error(
                        at + ["name"],
                        "warm list name must be 1-64 characters of A-Z, a-z, 0-9, - and _ (it names cachectl-warm@NAME.service): \(InputBounds.show(list.name))"
                    ))
            }
            if !warmNames.insert(list.name).inserted {
                errors.append(error(at + ["name"], "warm list \(list.name) is listed twice"))
            }
            do { try list.options.validate() } catch { errors.append(self.error(at, error)) }
            if list.files.isEmpty && list.models.isEmpty { errors.append(error(at, "name at least one file or model")) }
            for (j, file) in list.files.enumerated()
            where !file.hasPrefix("/") || InputBounds.controlCharacter(in: file) != nil {
                errors.append(
                    error(
                        at + ["files", .index(j)],
                        "must be an absolute path without control characters: \(InputBounds.show(file))"))
            }
            if !list.models.isEmpty && config.models == nil {
                errors.append(error(at + ["models"], "warming models needs the models section (dir and cold_store)"))
            }
        }
        return errors
    }
}

/// Names of warm lists: they become systemd instance names.
public enum WarmListName {
    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && !name.hasPrefix("-")
            && name.utf8.allSatisfy { c in
                (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d
                    || c == 0x5f
            }
    }
}
