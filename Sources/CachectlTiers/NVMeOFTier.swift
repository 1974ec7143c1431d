import CachectlMount
import CachectlSystem
import FoundationEssentials
import Glibc

/// The export an nvmeof tier reaches: what `nvmet connect` takes.
public struct RemoteNamespace: Codable, Sendable, Equatable {
    /// Subsystem NQN (`nqn.2014-08.org.cachectl:lend`).
    public var nqn: String
    /// `tcp`, `rdma` or `loop`.
    public var transport: String
    /// Target address; nil for loop.
    public var address: String?
    /// Target service port; nil for loop.
    public var port: Int?
    /// This host's NQN; nil for the machine's default (/etc/nvme/hostnqn).
    public var hostNQN: String?

    public init(nqn: String, transport: String, address: String?, port: Int?, hostNQN: String? = nil) {
        self.nqn = nqn
        self.transport = transport
        self.address = address
        self.port = port
        self.hostNQN = hostNQN
    }

    public static let transports = ["tcp", "rdma", "loop"]

    /// `hostNqn`: the state file's snake_case strategy writes `host_nqn` and
    /// reads that back as `hostNqn`, never as `hostNQN`.
    enum CodingKeys: String, CodingKey {
        case nqn, transport, address, port
        case hostNQN = "hostNqn"
    }

    /// The shape only; CachectlNVMeOF checks NQNs and addresses in full when it connects.
    func validate() throws(CachectlError) {
        guard Self.transports.contains(transport) else {
            throw .usage(
                ["remote", "transport"],
                "unknown transport '\(transport)'; one of: \(Self.transports.joined(separator: ", "))")
        }
        for (key, value) in [("nqn", nqn), ("address", address ?? ""), ("host_nqn", hostNQN ?? "")] {
            guard !value.contains(","), !value.contains("\n") else {
                throw .usage(["remote", .key(key)], "must not contain commas or newlines: \(value)")
            }
        }
        guard !nqn.isEmpty else { throw .usage(["remote", "nqn"], "must not be empty") }
        if transport == "loop" {
            guard address == nil else { throw .usage(["remote", "address"], "a loop transport takes no address") }
            guard port == nil else { throw .usage(["remote", "port"], "a loop transport takes no port") }
        } else {
            guard let address, !address.isEmpty else {
                throw .usage(["remote", "address"], "transport \(transport) needs an address")
            }
            guard let port, (1...65535).contains(port) else { throw .usage(["remote", "port"], "must be 1...65535") }
        }
    }

    /// `nqn at tcp 10.77.0.1:4420` for messages.
    public var summary: String {
        "\(nqn) over \(transport)" + (address.map { " at \($0)" + (port.map { ":\($0)" } ?? "") } ?? "")
    }
}

/// Connects and disconnects the namespace behind an nvmeof tier that names its
/// export. CachectlTiers does not speak NVMe-oF: the CLI passes one built on
/// CachectlNVMeOF's FabricsHost.
public protocol RemoteNamespaceLink: Sendable {
    /// Connects unless already connected; returns the namespace's block device.
    func connect(_ remote: RemoteNamespace) throws -> String
    /// The controllers (`nvme1`) connected to `remote` now.
    func controllers(of remote: RemoteNamespace) throws -> [String]
    /// Disconnects every controller connected to `remote`.
    func disconnect(_ remote: RemoteNamespace) throws
}

/// An nvmeof tier: a filesystem on an NVMe-over-Fabrics namespace, so models are
/// placed in another machine's RAM (exported with `cachectl nvmet export`). A
/// tier that names its export (`remote`) connects through `remotes` when it is
/// brought up and disconnects when it is released; one made on a device only
/// uses it. Either way it refuses a device that is not a fabrics namespace, so
/// a typo cannot mkfs a local disk.
struct NVMeOFTier: TierBackend {
    let roots: KernelRoots
    /// Without it, a tier that names its export uses its recorded device and stays connected.
    let remotes: (any RemoteNamespaceLink)?

    /// Connects to the tier's export (when it names one and a link is given) and
    /// mounts its namespace. A new connection can name another device (nvme2n1 after nvme1n1).
    /// The tier owns its connection (destroy ends it too): a tier that does not
    /// come up leaves none behind.
    func bringUp(_ spec: TierSpec, previous: TierRecord?, log: ChangeLog) throws -> TierRecord {
        let device: String
        if let remote = spec.remote, let remotes {
            var connected: String?
            try log.perform("connect to \(remote.summary)", revert: { try? remotes.disconnect(remote) }) {
                connected = try remotes.connect(remote)
            }
            if let connected { try checkUsable(connected, for: spec) }
            // Nil only in a check, which connects nothing: the steps name the namespace that would be.
            device = connected ?? "the namespace of \(remote.nqn)"
        } else {
            guard let given = spec.device else {
                throw CachectlError.usage(
                    ["device"], "an nvmeof tier needs a device (or the export's NQN to connect to)")
            }
            try checkUsable(given, for: spec)
            device = given
        }
        // What was on the namespace is gone: the mkfs is not undone.
        try RAMTiers.formatAndMount(device, spec, log: log, resetUndoesMkfs: false)
        var record = TierRecord(spec: spec)
        record.spec.device = device
        return record
    }

    /// A fabrics namespace that nothing has mounted.
    func checkUsable(_ device: String, for spec: TierSpec) throws {
        try Self.checkFabricsNamespace(device, roots: roots)
        if let user = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo").first(where: {
            $0.source == device
        }) {
            throw CachectlError(
                "use \(device) for tier \(spec.name)", path: device, errno: EBUSY,
                hint: "it is mounted on \(user.target); unmount it or choose another device")
        }
    }

    /// Disconnects the export the tier connected to.
    func release(_ record: TierRecord, log: ChangeLog) throws {
        guard let remote = record.spec.remote, let remotes else { return }
        let controllers = try remotes.controllers(of: remote)
        guard !controllers.isEmpty else { return }
        try log.perform("disconnect \(controllers.joined(separator: ", ")) from \(remote.summary)") {
            try remotes.disconnect(remote)
        }
    }

    /// Live when the device still exists, its controller is live (not
    /// reconnecting to a target that went away), and it is what is mounted at
    /// the tier's path.
    func liveMount(_ entry: MountEntry, of record: TierRecord) -> MountEntry? {
        guard let device = record.spec.device, access(device, F_OK) == 0, entry.source == device else { return nil }
        let states = Self.controllerStates(device, roots: roots)
        guard states.isEmpty || states.contains("live") else { return nil }
        return entry
    }

    /// An nvmeof tier is as large as its remote namespace.
    func checkResize(_ record: TierRecord, to size: ByteSize, models: [String]) throws {
        throw CachectlError.failed(
            "resize tier \(record.spec.name)",
            hint:
                "an nvmeof tier is as large as its remote namespace; export a new size, then destroy and create the tier"
        )
    }

    func resize(_ record: TierRecord, to spec: TierSpec, log: ChangeLog) throws -> TierRecord {
        try checkResize(record, to: spec.size, models: [])
        return record
    }

    /// A mount whose namespace is gone or not live (the target went away): it is
    /// detached, so its readers keep getting errors and a new connection can be mounted there.
    func deadMount(_ record: TierRecord) -> MountEntry? {
        guard let entry = try? MountTable.entry(at: record.spec.path, roots: roots),
            entry.source == record.spec.device, liveMount(entry, of: record) == nil
        else { return nil }
        return entry
    }

    /// Another machine's RAM, lent for a while: giving it back always demotes
    /// first, so no link is left pointing at it.
    var demotesOnDestroy: Bool { true }
    var leavesDeadCopiesAlone: Bool { true }

    /// The states (`live`, `connecting`, `resetting`, ...) of the controllers
    /// behind a namespace: its own, or a multipath head's paths.
    static func controllerStates(_ device: String, roots: KernelRoots) -> [String] {
        let deviceDir = roots.sys + "/class/block/\(Path.lastComponent(of: device))/device"
        if let state = try? AtomicFile.readText(deviceDir + "/state") { return [state.trimmingWhitespace()] }
        return directoryNames(deviceDir).filter { $0.hasPrefix("nvme") }.compactMap {
            (try? AtomicFile.readText(deviceDir + "/\($0)/state"))?.trimmingWhitespace()
        }
    }

    /// The device must be an NVMe namespace reached over a fabric (tcp, rdma,
    /// loop, fc), judged by sysfs: the controller(s) behind it name their transport.
    static func checkFabricsNamespace(_ device: String, roots: KernelRoots) throws {
        var st = stat()
        _ = try sys("stat", device) { stat(device, &st) }
        guard st.st_mode & S_IFMT == S_IFBLK else {
            throw CachectlError.failed("use \(device) as an nvmeof tier", path: device, hint: "not a block device")
        }
        let name = Path.lastComponent(of: device)
        let deviceDir = roots.sys + "/class/block/\(name)/device"
        var transports: [String] = []
        if let t = try? AtomicFile.readText(deviceDir + "/transport") {
            transports.append(t)
        } else {
            // A native-multipath head: its device is the subsystem, whose children are controllers.
            for entry in Self.directoryNames(deviceDir) where entry.hasPrefix("nvme") {
                if let t = try? AtomicFile.readText(deviceDir + "/\(entry)/transport") { transports.append(t) }
            }
        }
        let fabrics = transports.map { $0.trimmingWhitespace() }.filter { $0 != "pcie" && !$0.isEmpty }
        guard name.hasPrefix("nvme"), !fabrics.isEmpty else {
            throw CachectlError.failed(
                "use \(device) as an nvmeof tier", path: device,
                hint: "it is not an NVMe-over-Fabrics namespace (connect one with: cachectl nvmet connect ...); "
                    + "cachectl makes a new filesystem on it, so it refuses local disks")
        }
    }

    static func directoryNames(_ path: String) -> [String] {
        (try? ModelCatalog.listDirectory(path).map(\.name)) ?? []
    }
}

extension RAMTiers {
    /// Tiers whose device is one of `devices` (the namespaces of a controller
    /// about to be disconnected), by name.
    public func tiers(onDevices devices: [String]) throws -> [String] {
        try stateFile.load().tiers.filter { record in
            guard record.spec.type == .nvmeof else { return false }
            if let device = record.spec.device, devices.contains(device) { return true }
            return mount(of: record).map { devices.contains($0.source) } ?? false
        }.map(\.spec.name)
    }
}

extension TierSpec {
    /// An nvmeof tier names its device under /dev; other tiers name none.
    func validateDevice() throws(CachectlError) {
        guard type.takesDevice else { return }  // validate() refused a device or remote given anyway
        if let remote { try remote.validate() }
        guard let device else {
            if remote != nil { return }  // found when it connects
            throw CachectlError.usage(
                ["device"], "an nvmeof tier needs a device, /dev/nvmeXnY",
                hint: "name the namespace's block device, or the subsystem NQN to connect to")
        }
        guard device.hasPrefix("/dev/"), !device.contains(","), !device.contains("\n"), !device.contains("..") else {
            throw CachectlError.usage(["device"], "device must be a path under /dev: \(device)")
        }
    }
}
