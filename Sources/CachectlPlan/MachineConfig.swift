import CachectlFSCache
import CachectlNVMeOF
import CachectlSystem
import CachectlTiers
import CachectlWarm

/// The desired state of one machine, as `/etc/cachectl/cachectl.yaml` describes
/// it. Every section is optional: what the file does not mention, apply leaves
/// alone. See integration/examples/cachectl.yaml for a documented example and
/// integration/schema/cachectl.schema.json for the schema editors use.
public struct MachineConfig: Decodable, Sendable, Equatable {
    public static let defaultPath = "/etc/cachectl/cachectl.yaml"

    /// Format version; 1 (the only one so far) when absent.
    public var version: Int = 1
    /// The FS-Cache cache (cachefilesd): the same fields as `cachectl cache setup`.
    public var cache: CachefilesdConfig?
    /// NFS/CIFS mounts that must (or must not) have FS-Cache, and their readahead.
    public var shares: [Share] = []
    /// RAM tiers (tmpfs, zram).
    public var tiers: [Tier] = []
    /// The models directory, the cold store and where models are placed.
    public var models: Models?
    /// NVMe-oF: this machine's RAM exported to others, and remote RAM used here.
    public var nvmeof: NVMeOF?
    /// Lists of files and models to read into RAM or FS-Cache.
    public var warm: [WarmList] = []

    public init() {}

    enum CodingKeys: String, CodingKey { case version, cache, shares, tiers, models, nvmeof, warm }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
        cache = try c.decodeIfPresent(CachefilesdConfig.self, forKey: .cache)
        shares = try c.decodeIfPresent([Share].self, forKey: .shares) ?? []
        tiers = try c.decodeIfPresent([Tier].self, forKey: .tiers) ?? []
        models = try c.decodeIfPresent(Models.self, forKey: .models)
        nvmeof = try c.decodeIfPresent(NVMeOF.self, forKey: .nvmeof)
        warm = try c.decodeIfPresent([WarmList].self, forKey: .warm) ?? []
    }

    /// A network share: `fsc` on (or off) and the readahead window.
    public struct Share: Decodable, Sendable, Equatable {
        public var mountpoint: String
        /// FS-Cache on (default) or off.
        public var fsc: Bool = true
        /// Readahead window (4K...1G), e.g. `16M`; absent leaves it as it is.
        public var readahead: ByteSize?
        /// TCP connections to the server (`nconnect=`, 1...16); absent leaves it as it is.
        public var nconnect: Int?
        /// Bytes per READ request (`rsize=`), e.g. `1M`; absent leaves it as it is.
        public var rsize: ByteSize?
        /// Unmount even when processes use the share (they see errors).
        public var force: Bool = false

        enum CodingKeys: String, CodingKey { case mountpoint, fsc, readahead, nconnect, rsize, force }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            mountpoint = try c.decode(String.self, forKey: .mountpoint)
            fsc = try c.decodeIfPresent(Bool.self, forKey: .fsc) ?? true
            readahead = try c.decodeIfPresent(ByteSize.self, forKey: .readahead)
            nconnect = try c.decodeIfPresent(Int.self, forKey: .nconnect)
            rsize = try c.decodeIfPresent(ByteSize.self, forKey: .rsize)
            force = try c.decodeIfPresent(Bool.self, forKey: .force) ?? false
        }
    }

    public enum Presence: String, Decodable, Sendable, CaseIterable { case present, absent }

    /// A RAM tier: the fields of `cachectl tier create`, plus `state: absent` to destroy it.
    public struct Tier: Decodable, Sendable, Equatable {
        public var name: String
        public var type: TierType
        public var size: ByteSize
        public var path: String?
        public var algorithm: String?
        public var filesystem: TierFilesystem?
        public var rank: Int?
        /// Block device of an `nvmeof` tier (a connected namespace, e.g. /dev/nvme1n1).
        public var device: String?
        /// The export an `nvmeof` tier connects to itself (instead of `device`).
        public var remote: NVMeOF.Connection?
        /// `absent`: demote what is placed there and destroy the tier.
        public var state: Presence = .present

        enum CodingKeys: String, CodingKey {
            case name, type, size, path, algorithm, filesystem, rank, device, remote, state
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            type = try c.decode(TierType.self, forKey: .type)
            size = try c.decode(ByteSize.self, forKey: .size)
            path = try c.decodeIfPresent(String.self, forKey: .path)
            algorithm = try c.decodeIfPresent(String.self, forKey: .algorithm)
            filesystem = try c.decodeIfPresent(TierFilesystem.self, forKey: .filesystem)
            rank = try c.decodeIfPresent(Int.self, forKey: .rank)
            device = try c.decodeIfPresent(String.self, forKey: .device)
            remote = try c.decodeIfPresent(NVMeOF.Connection.self, forKey: .remote)
            state = try c.decodeIfPresent(Presence.self, forKey: .state) ?? .present
        }

        /// What `cachectl tier create` would be given.
        public var spec: TierSpec {
            TierSpec(
                name: name, type: type, size: size, path: path, algorithm: algorithm, filesystem: filesystem,
                rank: rank,
                device: device,
                remote: remote.map {
                    RemoteNamespace(
                        nqn: $0.nqn, transport: $0.transport.rawValue, address: $0.address, port: $0.port,
                        hostNQN: $0.hostNqn)
                })
        }
    }

    /// Models: where applications read them, where they really are, and placement.
    public struct Models: Decodable, Sendable, Equatable {
        /// Directory applications read (symlinks only), e.g. OLLAMA_MODELS.
        public var dir: String
        /// Where the model files really are (often the NFS share); never written to.
        public var coldStore: String
        /// How `promote` picks a tier for models not pinned.
        public var strategy: PlacementStrategy = .fastestFit
        /// Model → tier: promoted there and pinned (kept there by `tier health --restore`).
        public var pinned: [String: String] = [:]
        /// Models to place in a tier the strategy chooses.
        public var promote: [String] = []

        enum CodingKeys: String, CodingKey { case dir, coldStore, strategy, pinned, promote }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            dir = try c.decode(String.self, forKey: .dir)
            coldStore = try c.decode(String.self, forKey: .coldStore)
            strategy = try c.decodeIfPresent(PlacementStrategy.self, forKey: .strategy) ?? .fastestFit
            pinned = try c.decodeIfPresent([String: String].self, forKey: .pinned) ?? [:]
            promote = try c.decodeIfPresent([String].self, forKey: .promote) ?? []
        }
    }

    /// NVMe over Fabrics: this machine's RAM exported to others (tmpfs-backed
    /// namespaces, as `cachectl nvmet export`), and remote namespaces connected here
    /// (as `cachectl nvmet connect`; an `nvmeof` tier then puts a filesystem on one).
    public struct NVMeOF: Decodable, Sendable, Equatable {
        public var exports: [Export] = []
        public var connections: [Connection] = []

        enum CodingKeys: String, CodingKey { case exports, connections }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            exports = try c.decodeIfPresent([Export].self, forKey: .exports) ?? []
            connections = try c.decodeIfPresent([Connection].self, forKey: .connections) ?? []
        }

        /// One subsystem (nqn.2014-08.org.cachectl:NAME) with one RAM namespace, on one port.
        public struct Export: Decodable, Sendable, Equatable {
            public var name: String
            /// RAM the namespace holds (a multiple of 4K, at least 16M).
            public var size: ByteSize
            public var transport: FabricsTransport = .tcp
            /// IP address to listen on (not for loop).
            public var address: String?
            public var port: Int?
            /// Host NQNs allowed to connect.
            public var allowedHosts: [String] = []
            /// Any host may connect (must be said explicitly).
            public var allowAnyHost: Bool = false
            /// `absent`: unexport (the namespace's data is lost).
            public var state: Presence = .present

            enum CodingKeys: String, CodingKey {
                case name, size, transport, address, port, allowedHosts, allowAnyHost, state
            }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                name = try c.decode(String.self, forKey: .name)
                size = try c.decode(ByteSize.self, forKey: .size)
                transport = try c.decodeIfPresent(FabricsTransport.self, forKey: .transport) ?? .tcp
                address = try c.decodeIfPresent(String.self, forKey: .address)
                port = try c.decodeIfPresent(Int.self, forKey: .port) ?? (transport == .loop ? nil : 4420)
                allowedHosts = try c.decodeIfPresent([String].self, forKey: .allowedHosts) ?? []
                allowAnyHost = try c.decodeIfPresent(Bool.self, forKey: .allowAnyHost) ?? false
                state = try c.decodeIfPresent(Presence.self, forKey: .state) ?? .present
            }

            /// What `cachectl nvmet export` would be given.
            public var spec: ExportSpec {
                ExportSpec(
                    name: name, size: size, address: FabricsAddress(transport: transport, address: address, port: port),
                    allowedHosts: allowedHosts, allowAnyHost: allowAnyHost)
            }
        }

        /// A remote subsystem to connect to.
        public struct Connection: Decodable, Sendable, Equatable {
            public var nqn: String
            public var transport: FabricsTransport = .tcp
            public var address: String?
            public var port: Int?
            /// This host's NQN; default /etc/nvme/hostnqn.
            public var hostNqn: String?

            enum CodingKeys: String, CodingKey { case nqn, transport, address, port, hostNqn }

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                nqn = try c.decode(String.self, forKey: .nqn)
                transport = try c.decodeIfPresent(FabricsTransport.self, forKey: .transport) ?? .tcp
                address = try c.decodeIfPresent(String.self, forKey: .address)
                port = try c.decodeIfPresent(Int.self, forKey: .port) ?? (transport == .loop ? nil : 4420)
                hostNqn = try c.decodeIfPresent(String.self, forKey: .hostNqn)
            }

            public var spec: ConnectSpec {
                ConnectSpec(
                    address: FabricsAddress(transport: transport, address: address, port: port), nqn: nqn,
                    hostNQN: hostNqn)
            }
        }
    }

    /// A named list of files and models to warm. `cachectl-warm@NAME.service`
    /// warms one list; `apply` warms every list whose `on_apply` is true.
    public struct WarmList: Decodable, Sendable, Equatable {
        /// Letters, digits, `-` and `_` (it names a systemd unit instance).
        public var name: String
        /// Files or directories (walked recursively; one shard names the whole set).
        public var files: [String] = []
        /// Model names from the `models` section, warmed through their links.
        public var models: [String] = []
        /// `ram`: keep in the page cache; `disk`: only fill FS-Cache on an fsc share.
        public var into: WarmDestination = .ram
        /// Inside directories, keep only files matching these globs.
        public var include: [String] = []
        /// Inside directories, skip files matching these globs.
        public var exclude: [String] = []
        /// Readers and read size; absent: chosen per file by what backs it, as `cachectl warm` does.
        public var jobs: Int?
        public var chunk: ByteSize?
        /// Warm this list during `apply` (otherwise only through its unit).
        public var onApply: Bool = true

        enum CodingKeys: String, CodingKey { case name, files, models, into, include, exclude, jobs, chunk, onApply }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            files = try c.decodeIfPresent([String].self, forKey: .files) ?? []
            models = try c.decodeIfPresent([String].self, forKey: .models) ?? []
            into = try c.decodeIfPresent(WarmDestination.self, forKey: .into) ?? .ram
            include = try c.decodeIfPresent([String].self, forKey: .include) ?? []
            exclude = try c.decodeIfPresent([String].self, forKey: .exclude) ?? []
            jobs = try c.decodeIfPresent(Int.self, forKey: .jobs)
            chunk = try c.decodeIfPresent(ByteSize.self, forKey: .chunk)
            onApply = try c.decodeIfPresent(Bool.self, forKey: .onApply) ?? true
        }

        public var options: WarmOptions {
            WarmOptions(jobs: jobs, chunkSize: chunk?.bytes, destination: into)
        }
    }
}
