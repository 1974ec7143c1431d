import CachectlSystem

/// What backs a RAM tier.
public enum TierType: String, Codable, Sendable, CaseIterable {
    /// tmpfs: page-cache memory, swappable, no compression; the fastest tier.
    case tmpfs
    /// A zram block device with a filesystem on it: compressed RAM.
    case zram
    /// An NVMe-over-Fabrics namespace (another machine's RAM) with a filesystem on it.
    case nvmeof

    /// Speed rank when none is given: lower ranks are faster and are filled first.
    public var defaultRank: Int {
        switch self {
        case .tmpfs: 10
        case .zram: 20
        case .nvmeof: 30
        }
    }

    /// Tiers made on a block device, with a filesystem of cachectl's making.
    public var hasFilesystem: Bool { self != .tmpfs }
    /// Takes a compression algorithm.
    public var takesAlgorithm: Bool { self == .zram }
    /// Takes a device, or the remote export to connect to.
    public var takesDevice: Bool { self == .nvmeof }

    /// `zram and nvmeof`: the types for which `takes` holds, for messages.
    static func named(where takes: (TierType) -> Bool) -> String {
        let names = allCases.filter(takes).map(\.rawValue)
        return names.count > 1 ? names.dropLast().joined(separator: ", ") + " and " + names.last! : names.joined()
    }
}

/// Filesystem made on a zram device.
public enum TierFilesystem: String, Codable, Sendable, CaseIterable {
    case ext4, xfs
}

/// The desired shape of one RAM tier, as `tier create` and a YAML plan give it.
public struct TierSpec: Codable, Sendable, Equatable {
    public var name: String
    public var type: TierType
    public var size: ByteSize
    /// Mount point.
    public var path: String
    /// zram compression algorithm (`lz4`, `zstd`, ...); nil keeps the kernel's default.
    public var algorithm: String?
    /// Filesystem of a zram or nvmeof tier; nil for tmpfs.
    public var filesystem: TierFilesystem?
    /// Block device of an nvmeof tier (`/dev/nvme1n1`); nil for the others.
    public var device: String?
    /// The export an nvmeof tier connects to by itself (and reconnects to in
    /// `tier health --restore`, and disconnects from when destroyed); nil when
    /// the tier was made on a device connected by other means.
    public var remote: RemoteNamespace?
    /// Speed rank for placement: lower is faster.
    public var rank: Int

    public init(
        name: String, type: TierType, size: ByteSize, path: String? = nil, algorithm: String? = nil,
        filesystem: TierFilesystem? = nil, rank: Int? = nil, device: String? = nil, remote: RemoteNamespace? = nil
    ) {
        self.name = name
        self.type = type
        self.size = size
        self.path = path ?? Self.defaultPath(for: name)
        // What the type does not take is dropped; callers that were given it say so (``inapplicable(to:algorithm:filesystem:device:remote:)``)..
        self.algorithm = type.takesAlgorithm ? algorithm : nil
        self.filesystem = type.hasFilesystem ? (filesystem ?? .ext4) : nil
        self.rank = rank ?? type.defaultRank
        self.device = type.takesDevice ? device : nil
        self.remote = type.takesDevice ? remote : nil
    }

    /// Where a tier is mounted unless `--path` says otherwise.
    public static func defaultPath(for name: String) -> String { "/run/cachectl/tiers/" + name }

    /// Smallest tier: below this a filesystem does not fit its own metadata.
    public static let minimumSize = ByteSize(16 << 20)

    /// Compression algorithms Linux's zram knows by name (what this kernel offers
    /// is checked again against `comp_algorithm` when the device exists).
    public static let knownAlgorithms = ["lzo", "lzo-rle", "lz4", "lz4hc", "zstd", "deflate", "842"]

    /// Checks every field before anything is changed.
    public func validate() throws(CachectlError) {
        try Self.validateName(name)
        guard path.hasPrefix("/"), !path.contains("\n"), !path.contains(","), path != "/" else {
            throw CachectlError.usage(
                ["path"], "tier path must be an absolute directory without commas or newlines: \(path)")
        }
        guard !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw CachectlError.usage(["path"], "tier path must not contain . or .. components: \(path)")
        }
        guard size >= Self.minimumSize else {
            throw CachectlError.usage(["size"], "tier size \(size) is too small; at least \(Self.minimumSize)")
        }
        guard (0...1000).contains(rank) else {
            throw CachectlError.usage(["rank"], "rank must be 0...1000 (lower is faster): \(rank)")
        }
        let given = (
            algorithm: algorithm != nil, filesystem: filesystem != nil, device: device != nil, remote: remote != nil
        )
        if let wrong = Self.inapplicable(
            to: type, algorithm: given.algorithm, filesystem: given.filesystem, device: given.device,
            remote: given.remote
        ).first {
            throw wrong
        }
        if let algorithm {
            guard Self.knownAlgorithms.contains(algorithm) else {
                throw CachectlError.usage(
                    ["algorithm"],
                    "unknown zram algorithm '\(algorithm)'; one of: \(Self.knownAlgorithms.joined(separator: ", "))")
            }
        }
        try validateDevice()
    }

    /// The fields given (true: present) that `type` does not take, one error each.
    /// `init` drops them, so a caller given them (a YAML file) reports them with these.
    public static func inapplicable(
        to type: TierType, algorithm: Bool, filesystem: Bool, device: Bool, remote: Bool
    ) -> [CachectlError] {
        var errors: [CachectlError] = []
        func refuse(_ key: String, _ given: Bool, _ takes: (TierType) -> Bool) {
            if given && !takes(type) {
                errors.append(.usage([.key(key)], "\(key) applies to \(TierType.named(where: takes)) tiers only"))
            }
        }
        refuse("algorithm", algorithm, \.takesAlgorithm)
        refuse("filesystem", filesystem, \.hasFilesystem)
        refuse("device", device, \.takesDevice)
        refuse("remote", remote, \.takesDevice)
        return errors
    }

    /// Tier names become path components and mount sources: keep them plain.
    public static func validateName(_ name: String) throws(CachectlError) {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f
        }
        guard !name.isEmpty, name.utf8.count <= 32, allowed, !name.hasPrefix("-") else {
            throw CachectlError.usage(["name"], "tier name must be 1-32 characters of a-z, 0-9, - and _: '\(name)'")
        }
    }
}
