import CachectlFSCache
import CachectlSystem
import Foundation

/// The systemd units `cachectl install-units` writes, rendered from the
/// templates embedded in the binary (the repository's `templates/` is the one
/// source: `Sources/CachectlPlan/Templates/` holds symlinks to it).
public struct UnitFiles: Sendable {
    /// Where the units go.
    public var directory: String
    /// The cachectl binary the units run.
    public var binary: String
    /// The YAML file `apply` and the warm units read.
    public var config: String
    /// Directory of the FUSE mirrors' environment files (`NAME.env`).
    public var fuseDirectory: String
    /// Mount points apply needs (`RequiresMountsFor=`): the shares of `config`.
    public var mounts: [String]
    public var check: Bool

    public init(
        directory: String = "/etc/systemd/system", binary: String = "/usr/local/bin/cachectl",
        config: String = MachineConfig.defaultPath, fuseDirectory: String = "/etc/cachectl/fuse",
        mounts: [String] = [], check: Bool = false
    ) {
        self.directory = directory
        self.binary = binary
        self.config = config
        self.fuseDirectory = fuseDirectory
        self.mounts = mounts
        self.check = check
    }

    /// The mount points of the shares in the YAML file at `config` (none when it
    /// does not exist yet or does not parse: `apply` reports that itself).
    public static func shareMounts(inConfig config: String) -> [String] {
        guard let loaded = try? ConfigFile.load(config) else { return [] }
        return loaded.config.shares.map(\.mountpoint)
    }

    public static let names = ["cachectl-apply.service", "cachectl-warm@.service", "cachectl-fuse@.service"]

    public struct Unit: Codable, Sendable, Equatable {
        public var name: String
        public var path: String
        public var changed: Bool
        /// Unified diff old → new (empty when equal).
        public var diff: String
    }

    public struct Result: Codable, Sendable, Equatable {
        public var changed: Bool
        public var units: [Unit]
        /// `systemctl daemon-reload` was run (or, with check, would be).
        public var reloaded: Bool
    }

    /// Values become whole lines' parts in unit files: absolute paths without
    /// whitespace, control characters or `%` (systemd's specifier character).
    public func validate() throws(ConfigError) {
        for (name, value) in [("--dir", directory), ("--binary", binary), ("--config", config), ("--fuse-dir", fuseDirectory)]
            + mounts.map({ ("shares[].mountpoint", $0) }) {
            guard value.hasPrefix("/"), !value.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f || $0 == "%" || $0 == "\\" }) else {
                throw ConfigError(file: name, path: "", message: "\(name) must be an absolute path without spaces, control characters, % or backslashes: '\(value)'")
            }
        }
    }

    public func render(_ name: String) throws -> String {
        let template: Template = switch name {
        case "cachectl-apply.service": Template(String(decoding: PackageResources.cachectl_apply_service_mustache, as: UTF8.self))
        case "cachectl-warm@.service": Template(String(decoding: PackageResources.cachectl_warm__service_mustache, as: UTF8.self))
        default: Template(String(decoding: PackageResources.cachectl_fuse__service_mustache, as: UTF8.self))
        }
        return try template.render([
            "cachectl": binary, "config": config, "fuse_dir": fuseDirectory,
            "mounts": mounts.isEmpty ? nil : mounts.joined(separator: " "),
        ])
    }

    /// Writes each unit atomically when it differs, then reloads systemd (when it runs).
    public func install(reload: Bool = true) throws -> Result {
        try validate()
        var units: [Unit] = []
        for name in Self.names {
            let path = directory + "/" + name
            let text = try render(name)
            let old = (try? AtomicFile.readText(path)) ?? ""
            let changed = old != text
            if changed && !check {
                if !FileManager.default.fileExists(atPath: directory) {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                }
                try AtomicFile.write(text, to: path, mode: 0o644)
            }
            units.append(Unit(name: name, path: path, changed: changed,
                              diff: UnifiedDiff.make(old: old, new: text, oldLabel: path, newLabel: path + " (cachectl)")))
        }
        let changed = units.contains(where: \.changed)
        let reloaded = changed && reload && Systemd.isRunning()
        if reloaded && !check {
            try Systemd.reload()
        }
        return Result(changed: changed, units: units, reloaded: reloaded)
    }
}
