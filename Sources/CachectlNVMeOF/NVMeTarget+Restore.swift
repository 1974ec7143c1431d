import CachectlSystem
import Glibc

/// What `save`/`restore` and `export`/`unexport` did (or, with `check`, would do).
public struct TargetChange: Encodable, Sendable {
    public var changed: Bool
    /// `exported`, `exists`, `unexported`, `absent`, `restored`, `unchanged`, ...
    public var action: String
    /// Steps taken, in order.
    public var steps: [String]
    public var export: ExportStatus?

    public init(changed: Bool, action: String, steps: [String], export: ExportStatus?) {
        self.changed = changed
        self.action = action
        self.steps = steps
        self.export = export
    }
}

extension NVMeTarget {
    /// Makes configfs hold everything `config` describes (nvmetcli's `restore`),
    /// writing only what differs, so a second run changes nothing. Objects not in
    /// the file are kept unless `replace`, which removes them first (nvmetcli's
    /// default `clear_existing`). Namespaces whose path is a cachectl RAM backing
    /// file get their tmpfs and file made again (after a reboot).
    public func restore(_ config: NvmetConfig, replace: Bool = false, check: Bool = false) throws -> TargetChange {
        try Self.validate(config)
        try validateBackingPaths(config)
        let log = ChangeLog(check: check)
        do {
            let transports = Set(config.ports.compactMap { $0.transport.flatMap(FabricsTransport.init(rawValue:)) })
            try prepareKernel(transports: transports, log: log)
            if replace && isLoaded { try removeUnlisted(config, log: log) }
            try setGroups(config.node.groups, in: root, what: "nvmet", log: log)
            for host in config.hosts { try ensureHost(host.nqn, groups: host.node.groups, log: log) }
            for subsystem in config.subsystems {
                try ensureSubsystem(subsystem.nqn, log: log)
                for ns in subsystem.namespaces { try ensureNamespace(subsystem.nqn, ns, log: log) }
                for host in subsystem.allowedHosts {
                    if !config.hosts.contains(where: { $0.nqn == host }) { try ensureHost(host, log: log) }
                    try allowHost(host, in: subsystem.nqn, log: log)
                }
                try setGroups(subsystem.node.groups, in: subsystemPath(subsystem.nqn), what: subsystem.nqn, log: log)
            }
            for port in config.ports {
                try ensurePort(port.portid, groups: port.node.groups, log: log)
                for group in port.anaGroups ?? [] {
                    let path = portPath(port.portid) + "/ana_groups/" + group.name
                    if !Configfs.isDirectory(path) {
                        try log.mkdir(path, what: "port \(port.portid) ANA group \(group.name)")
                    }
                    try setGroups(
                        group.node.groups, in: path, what: "port \(port.portid) ANA group \(group.name)", log: log)
                }
                for referral in port.referrals {
                    let path = portPath(port.portid) + "/referrals/" + referral.name
                    if !Configfs.isDirectory(path) {
                        try log.mkdir(path, what: "port \(port.portid) referral \(referral.name)")
                    }
                    try setGroups(referral.node.groups, in: path, what: "referral \(referral.name)", log: log)
                    if let enable = referral.node.enable {
                        try log.set(path + "/enable", to: String(enable), what: "referral \(referral.name) enable")
                    }
                }
                for nqn in port.subsystems { try linkPort(port.portid, to: nqn, log: log) }
            }
        } catch {
            throw log.rolledBack(after: error)
        }
        return TargetChange(
            changed: log.changed, action: log.changed ? (check ? "would restore" : "restored") : "unchanged",
            steps: log.steps, export: nil)
    }

    /// Removes what the file does not list: port links, ports, namespaces,
    /// allowed hosts, subsystems and hosts, in the order configfs permits.
    private func removeUnlisted(_ config: NvmetConfig, log: ChangeLog) throws {
        let now = try current()
        for port in now.ports {
            guard let wanted = config.port(port.portid) else {
                try deletePort(port.portid, log: log)
                continue
            }
            for nqn in port.subsystems where !wanted.subsystems.contains(nqn) {
                try log.unlink(portPath(port.portid) + "/subsystems/" + nqn, what: "port \(port.portid) → \(nqn)")
            }
        }
        for subsystem in now.subsystems {
            guard let wanted = config.subsystem(subsystem.nqn) else {
                try deleteSubsystem(subsystem.nqn, log: log)
                continue
            }
            for ns in subsystem.namespaces where !wanted.namespaces.contains(where: { $0.nsid == ns.nsid }) {
                try deleteNamespace(subsystem.nqn, nsid: String(ns.nsid), log: log)
            }
            for host in subsystem.allowedHosts where !wanted.allowedHosts.contains(host) {
                try log.unlink(
                    subsystemPath(subsystem.nqn) + "/allowed_hosts/" + host,
                    what: "allowed host \(host) of \(subsystem.nqn)")
            }
        }
        let listedHosts = Set(config.hosts.map(\.nqn) + config.subsystems.flatMap(\.allowedHosts))
        for host in now.hosts where !listedHosts.contains(host.nqn) {
            try log.rmdir(hostPath(host.nqn), what: "host \(host.nqn)")
        }
    }

    /// Namespace paths under cachectl's backing directory must be exactly the
    /// backing files it makes (`BACKING/NAME/ram-SIZE.img`): restore mounts a
    /// tmpfs on `BACKING/NAME`, so any other path there could put one elsewhere.
    func validateBackingPaths(_ config: NvmetConfig) throws(CachectlError) {
        for subsystem in config.subsystems {
            for ns in subsystem.namespaces {
                guard let path = ns.devicePath, path.hasPrefix(backingRoot + "/") || path == backingRoot else {
                    continue
                }
                if RAMBacking.parse(path, backingRoot: backingRoot) == nil {
                    throw CachectlError.usage(
                        nil,
                        "namespace \(ns.nsid) of \(subsystem.nqn): device path \(path) is inside cachectl's backing directory "
                            + "\(backingRoot) but is not a backing file it makes (\(backingRoot)/NAME/ram-SIZE.img)")
                }
            }
        }
    }

    /// A subsystem's saved passthru that is in use (enabled, or naming a device).
    /// Kernels built with passthru support (Debian's 6.12) give every subsystem an
    /// unused passthru group, which save writes and restore can ignore. Its
    /// unset device path reads "(null)" (the kernel prints a NULL string so).
    static func passthruInUse(_ value: NvmetJSON?) -> Bool {
        guard case .array(let items)? = value else { return false }
        return items.contains { item in
            guard case .object(let members) = item else { return true }
            if case .int(let enable)? = members["enable"], enable != 0 { return true }
            if case .object(let device)? = members["device"], case .string(let path)? = device["path"],
                !["", "(null)"].contains(path)
            {
                return true
            }
            return false
        }
    }

    /// Checks names, ids and references before anything is written.
    static func validate(_ config: NvmetConfig) throws(CachectlError) {
        for host in config.hosts { try NQN.validateName(host.nqn, what: "host NQN") }
        var seen = Set<String>()
        for subsystem in config.subsystems {
            try NQN.validateName(subsystem.nqn, what: "subsystem NQN")
            guard seen.insert(subsystem.nqn).inserted else {
                throw CachectlError.usage(nil, "subsystem \(subsystem.nqn) is listed twice")
            }
            if passthruInUse(subsystem.node.extra["passthru"]) {
                throw CachectlError.usage(
                    nil,
                    "subsystem \(subsystem.nqn) uses passthru, which cachectl does not restore; use nvmetcli for it")
            }
            for ns in subsystem.namespaces {
                guard (1...0xFFFF_FFFE).contains(ns.nsid) else {
                    throw CachectlError.usage(nil, "namespace id must be 1-4294967294: \(ns.nsid) in \(subsystem.nqn)")
                }
                if let path = ns.devicePath, !path.hasPrefix("/") {
                    throw CachectlError.usage(
                        nil, "namespace \(ns.nsid) of \(subsystem.nqn): device path must be absolute: \(path)")
                }
                if let path = ns.devicePath, path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) {
                    throw CachectlError.usage(
                        nil,
                        "namespace \(ns.nsid) of \(subsystem.nqn): device path must not contain '.' or '..': \(path)")
                }
            }
            for host in subsystem.allowedHosts { try NQN.validateName(host, what: "allowed host NQN") }
        }
        var ports = Set<Int>()
        for port in config.ports {
            guard (0...65535).contains(port.portid) else {
                throw CachectlError.usage(nil, "port id must be 0-65535: \(port.portid)")
            }
            guard ports.insert(port.portid).inserted else {
                throw CachectlError.usage(nil, "port \(port.portid) is listed twice")
            }
            for nqn in port.subsystems where !seen.contains(nqn) {
                throw CachectlError.usage(
                    nil, "port \(port.portid) links subsystem \(nqn), which the file does not define")
            }
            if let address = port.address, let transport = port.transport, transport == "tcp" || transport == "rdma" {
                try FabricsAddress.validateIP(address)
            }
            for child in port.referrals + (port.anaGroups ?? []) {
                guard !child.name.isEmpty, !child.name.contains("/"), child.name != ".", child.name != ".." else {
                    throw CachectlError.usage(
                        nil, "port \(port.portid): bad referral or ANA group name '\(child.name)'")
                }
            }
        }
    }
}
