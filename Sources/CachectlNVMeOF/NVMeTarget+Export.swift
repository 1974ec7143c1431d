import CachectlSystem
import Glibc

/// One RAM namespace exported over NVMe-oF, as `nvmet export` takes it.
public struct ExportSpec: Sendable, Equatable {
    public var name: String
    public var size: ByteSize
    public var address: FabricsAddress
    /// Host NQNs allowed to connect.
    public var allowedHosts: [String]
    /// Let any host connect (must be asked for explicitly).
    public var allowAnyHost: Bool

    public init(
        name: String, size: ByteSize, address: FabricsAddress, allowedHosts: [String] = [], allowAnyHost: Bool = false
    ) {
        self.name = name
        self.size = size
        self.address = address
        self.allowedHosts = allowedHosts
        self.allowAnyHost = allowAnyHost
    }

    public var nqn: String { NQN.forExport(name) }

    /// Smallest export: a filesystem needs room for its own metadata.
    public static let minimumSize = ByteSize(16 << 20)

    public func validate() throws(CachectlError) {
        try Self.validateName(name)
        try NQN.validate(nqn, what: "subsystem NQN", field: ["name"])
        guard size >= Self.minimumSize else {
            throw .usage(["size"], "size \(size) is too small; at least \(Self.minimumSize)")
        }
        guard size.bytes % 4096 == 0 else {
            throw .usage(["size"], "size must be a multiple of 4 KiB (the namespace's block size): \(size.bytes)")
        }
        try address.validate()
        for (i, host) in allowedHosts.enumerated() {
            try NQN.validate(host, what: "allowed host", field: ["allowed_hosts", .index(i)])
        }
        guard Set(allowedHosts).count == allowedHosts.count else {
            throw .usage(["allowed_hosts"], "allowed hosts list a host twice")
        }
        guard allowAnyHost || !allowedHosts.isEmpty else {
            throw .usage(
                ["allowed_hosts"],
                "name the hosts that may connect (their NQNs: see /etc/nvme/hostnqn on each), or allow any host")
        }
        if allowAnyHost && !allowedHosts.isEmpty {
            throw .usage(["allow_any_host"], "allowing any host and naming allowed hosts exclude each other")
        }
    }

    /// Export names become an NQN suffix and a directory name: keep them plain.
    public static func validateName(_ name: String) throws(CachectlError) {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, !name.hasPrefix("-") else {
            throw .usage(["name"], "export name must be 1-64 characters of a-z, 0-9, - and _: '\(name)'")
        }
    }
}

/// A subsystem as `nvmet list` shows it.
public struct ExportStatus: Encodable, Sendable, Equatable {
    public struct Namespace: Encodable, Sendable, Equatable {
        public var nsid: Int
        public var path: String?
        public var enabled: Bool
        /// Size of the backing file or device.
        public var size: UInt64?
        /// `ram` (cachectl's tmpfs file), `file` or `block`.
        public var backing: String
        /// RAM in use by a `ram` backing now (pages written).
        public var residentBytes: UInt64?
    }

    public struct Port: Encodable, Sendable, Equatable {
        public var portid: Int
        public var transport: String?
        public var address: String?
        public var port: String?
    }

    /// Export name for subsystems cachectl made.
    public var name: String?
    public var nqn: String
    public var namespaces: [Namespace]
    public var allowAnyHost: Bool
    public var allowedHosts: [String]
    public var ports: [Port]
}

extension NVMeTarget {
    /// Every subsystem with its namespaces, backing, hosts and ports.
    public func list() throws -> [ExportStatus] {
        guard isLoaded else { return [] }
        let config = try current()
        return config.subsystems.map { status(of: $0, in: config) }
    }

    func status(of subsystem: NvmetConfig.Subsystem, in config: NvmetConfig) -> ExportStatus {
        ExportStatus(
            name: NQN.exportName(of: subsystem.nqn), nqn: subsystem.nqn,
            namespaces: subsystem.namespaces.map { ns in
                let path = ns.devicePath.flatMap { $0.isEmpty ? nil : $0 }
                var st = stat()
                let found = path.map { stat($0, &st) == 0 } ?? false
                let isBlock = found && st.st_mode & S_IFMT == S_IFBLK
                let ram = path.flatMap { RAMBacking.parse($0, backingRoot: backingRoot) }
                return .init(
                    nsid: ns.nsid, path: path, enabled: ns.node.enable == 1,
                    size: ram?.size
                        ?? (found && !isBlock
                            ? UInt64(st.st_size) : path.flatMap { Self.blockDeviceSize($0, roots: roots) }),
                    backing: ram != nil ? "ram" : isBlock ? "block" : "file", residentBytes: ram?.residentBytes())
            },
            allowAnyHost: subsystem.allowAnyHost, allowedHosts: subsystem.allowedHosts,
            ports: config.ports.filter { $0.subsystems.contains(subsystem.nqn) }.map {
                .init(portid: $0.portid, transport: $0.transport, address: $0.address, port: $0.serviceID)
            })
    }

    /// A block device's size in bytes, from sysfs (`size` counts 512-byte sectors
    /// whatever the block size).
    public static func blockDeviceSize(_ path: String, roots: KernelRoots = .system) -> UInt64? {
        let name = Path.lastComponent(of: path)
        return Configfs.read(roots.sys + "/class/block/\(name)/size").flatMap { UInt64($0) }.map { $0 * 512 }
    }

    /// Exports a RAM namespace: backing tmpfs and file, host entries, subsystem
    /// (nqn.2014-08.org.cachectl:NAME) with namespace 1, allowed hosts, a port
    /// (an existing one with the same address is shared), and the link that
    /// makes it reachable — last, so it is never reachable half-configured.
    /// Idempotent; a failed step undoes the steps before it.
    public func export(_ spec: ExportSpec, check: Bool = false) throws -> TargetChange {
        try spec.validate()
        let log = ChangeLog(check: check)
        let backing = RAMBacking(backingRoot: backingRoot, name: spec.name, size: spec.size.bytes)
        do {
            try prepareKernel(transports: [spec.address.transport], log: log)
            let now = isLoaded ? try current() : NvmetConfig()
            if let existing = now.subsystem(spec.nqn) {
                let paths = existing.namespaces.compactMap(\.devicePath).filter { !$0.isEmpty }
                if let other = paths.first(where: { $0 != backing.file }) {
                    throw CachectlError.failed(
                        "export \(spec.name)", path: subsystemPath(spec.nqn),
                        hint:
                            "it is exported with another backing (\(other)); to change its size, unexport it first (its data is lost)"
                    )
                }
            }
            let portID = Self.portID(for: spec.address, in: now)
            for host in spec.allowedHosts { try ensureHost(host, log: log) }
            try ensureSubsystem(spec.nqn, log: log)
            // Hosts and allow_any_host before the port link: never open to more than asked.
            try log.set(
                subsystemPath(spec.nqn) + "/attr_allow_any_host", to: spec.allowAnyHost ? "1" : "0",
                what: "\(spec.nqn) allow_any_host")
            let previous = now.subsystem(spec.nqn)?.allowedHosts ?? []
            for host in previous where !spec.allowedHosts.contains(host) {
                try log.unlink(
                    subsystemPath(spec.nqn) + "/allowed_hosts/" + host, what: "allowed host \(host) of \(spec.nqn)")
                try deleteHostIfUnused(host, log: log, ignoring: log.check ? spec.nqn : nil)
            }
            for host in spec.allowedHosts { try allowHost(host, in: spec.nqn, log: log) }
            try ensureNamespace(
                spec.nqn, .init(nsid: 1, node: NvmetNode(groups: ["device": ["path": backing.file]], enable: 1)),
                log: log)
            var addr: [String: String] = ["trtype": spec.address.transport.rawValue, "adrfam": spec.address.family]
            if let ip = spec.address.address { addr["traddr"] = ip }
            if let port = spec.address.port { addr["trsvcid"] = String(port) }
            try ensurePort(portID, groups: ["addr": addr], log: log)
            try unlinkFromPorts(spec.nqn, keep: portID, removeEmptyPorts: true, log: log)
            try linkPort(portID, to: spec.nqn, log: log)
        } catch {
            log.rollBack()
            throw error
        }
        let after = !check && isLoaded ? (try? current()) : nil
        return TargetChange(
            changed: log.changed, action: log.changed ? (check ? "would export" : "exported") : "exists",
            steps: log.steps,
            export: after.flatMap { config in config.subsystem(spec.nqn).map { status(of: $0, in: config) } })
    }

    /// The port with the same transport address, else the lowest free id.
    static func portID(for address: FabricsAddress, in config: NvmetConfig) -> Int {
        if let same = config.ports.first(where: { port in
            port.transport == address.transport.rawValue && port.address == address.address.map { $0 }
                && (address.port.map { String($0) } == port.serviceID
                    || (address.port == nil && address.transport == .loop))
        }) {
            return same.portid
        }
        let used = Set(config.ports.map(\.portid))
        return (1...).first { !used.contains($0) }!
    }

    /// Tears an export down: port links (ports left empty are removed), the
    /// namespace (disabled, then removed), allowed-host links, the subsystem,
    /// host entries no other subsystem allows, and the backing tmpfs.
    public func unexport(_ name: String, check: Bool = false) throws -> TargetChange {
        try ExportSpec.validateName(name)
        let nqn = NQN.forExport(name)
        let log = ChangeLog(check: check)
        guard isLoaded, Configfs.isDirectory(subsystemPath(nqn)) else {
            // A backing left behind by an interrupted run is still released.
            let leftovers = Configfs.list(backingRoot + "/" + name).compactMap {
                RAMBacking.parse(backingRoot + "/\(name)/" + $0, backingRoot: backingRoot)
            }
            for backing in leftovers { try backing.release(roots: roots, log: log) }
            return TargetChange(
                changed: log.changed, action: log.changed ? "released leftover backing" : "absent", steps: log.steps,
                export: nil)
        }
        let config = try current()
        let before = config.subsystem(nqn).map { status(of: $0, in: config) }
        let hosts = config.subsystem(nqn)?.allowedHosts ?? []
        try unlinkFromPorts(nqn, removeEmptyPorts: true, log: log)
        try deleteSubsystem(nqn, log: log)
        for host in hosts { try deleteHostIfUnused(host, log: log, ignoring: nqn) }
        return TargetChange(
            changed: true, action: check ? "would unexport" : "unexported", steps: log.steps, export: before)
    }
}
