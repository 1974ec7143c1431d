import CachectlFSCache
import CachectlSystem
import FoundationEssentials

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

    public static let names = [
        "cachectl-apply.service", "cachectl-warm@.service", "cachectl-fuse@.service", "cachectl-serve.service",
    ]

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

    /// Values become parts of unit-file lines in several contexts at once: comments,
    /// `Description=`, `ConditionPathExists=`, `RequiresMountsFor=` and `ExecStart=`, each with its own
    /// quoting rules (systemd.syntax(7), systemd.service(5)). No single escape is right
    /// in all of them, so values are limited to characters that need none: absolute
    /// paths of letters, digits, `/ . _ - + @ : , =` and non-ASCII letters. Everything
    /// else (spaces, quotes, `$`, `%`, `\`, `;`, control characters, newlines) is
    /// refused, naming the option; nothing is written.
    public func validate() throws(CachectlError) {
        let fields: [(FieldPath, String)] = [
            (["dir"], directory), (["binary"], binary), (["config"], config), (["fuse_dir"], fuseDirectory),
        ]
        for (field, value) in fields + mounts.map({ (["shares", "mountpoint"], $0) }) {
            if let problem = Self.problem(value) {
                throw .usage(field, "\(field.key ?? "") \(problem): \(InputBounds.show(value))")
            }
        }
    }

    /// Why `value` cannot go into a unit file, or nil.
    static func problem(_ value: String) -> String? {
        guard value.hasPrefix("/") else { return "must be an absolute path" }
        guard value.utf8.count <= 4096 else { return "is longer than PATH_MAX (4096 bytes)" }
        if let bad = value.unicodeScalars.first(where: { !isUnitSafe($0) }) {
            let shown = bad.value < 0x20 || bad.value == 0x7f ? bad.escaped(asASCII: true) : String(bad)
            return "may contain only letters, digits and / . _ - + @ : , = (systemd unit syntax); found '\(shown)'"
        }
        return nil
    }

    private static func isUnitSafe(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: true
        case 0x2f, 0x2e, 0x5f, 0x2d, 0x2b, 0x40, 0x3a, 0x2c, 0x3d: true  // / . _ - + @ : , =
        case 0xa0...: !c.properties.isWhitespace && c.value != 0x2028 && c.value != 0x2029
        default: false
        }
    }

    public func render(_ name: String) throws -> String {
        let template: Template =
            switch name {
            case "cachectl-apply.service":
                Template(String(decoding: PackageResources.cachectl_apply_service_mustache, as: UTF8.self))
            case "cachectl-warm@.service":
                Template(String(decoding: PackageResources.cachectl_warm__service_mustache, as: UTF8.self))
            case "cachectl-serve.service":
                Template(String(decoding: PackageResources.cachectl_serve_service_mustache, as: UTF8.self))
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
            units.append(
                Unit(
                    name: name, path: path, changed: changed,
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
