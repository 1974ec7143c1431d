import CachectlSystem
import Glibc

/// The kernel's NVMe-over-Fabrics target (nvmet), driven through configfs
/// (drivers/nvme/target/configfs.c): `nvmet/subsystems/NQN/namespaces/NSID`, `nvmet/ports/ID`,
/// `nvmet/hosts/NQN`, and the symlinks that join them. The library behind
/// `cachectl nvmet export|list|unexport|save|restore`.
public struct NVMeTarget: Sendable {
    public let roots: KernelRoots
    /// Where RAM backing files live: one tmpfs per export, `BACKING/NAME`.
    public let backingRoot: String

    public static let defaultBackingRoot = "/run/cachectl/nvmet"

    public init(roots: KernelRoots = .system, backingRoot: String = NVMeTarget.defaultBackingRoot) {
        self.roots = roots
        self.backingRoot = backingRoot
    }

    /// `CONFIGFS/nvmet`.
    public var root: String { roots.configfs + "/nvmet" }
    func subsystemPath(_ nqn: String) -> String { root + "/subsystems/" + nqn }
    func portPath(_ id: Int) -> String { root + "/ports/\(id)" }
    func hostPath(_ nqn: String) -> String { root + "/hosts/" + nqn }

    /// Whether nvmet's configfs tree is there (the module loaded, configfs mounted).
    public var isLoaded: Bool { Configfs.isDirectory(root) }

    /// The configuration now in configfs, read the way nvmetcli's `dump()` reads
    /// it, so `save` writes what `nvmetcli save` would.
    public func current() throws -> NvmetConfig {
        guard isLoaded else {
            throw CachectlError(
                "read", path: root, errno: ENOENT,
                hint: "nvmet is not loaded; run: modprobe nvmet (or cachectl nvmet export)")
        }
        var config = NvmetConfig()
        config.node.groups = Configfs.groups(root, NvmetConfig.Groups.root)
        config.node.enable = Configfs.enable(root)
        for nqn in Configfs.list(root + "/hosts") {
            let path = hostPath(nqn)
            config.hosts.append(
                .init(
                    nqn: nqn,
                    node: NvmetNode(
                        groups: Configfs.groups(path, NvmetConfig.Groups.host), enable: Configfs.enable(path))))
        }
        for nqn in Configfs.list(root + "/subsystems") {
            let path = subsystemPath(nqn)
            var subsystem = NvmetConfig.Subsystem(
                nqn: nqn,
                node: NvmetNode(
                    groups: Configfs.groups(path, NvmetConfig.Groups.subsystem), enable: Configfs.enable(path)))
            for name in Configfs.list(path + "/namespaces") {
                guard let nsid = Int(name) else { continue }
                let nsPath = path + "/namespaces/" + name
                subsystem.namespaces.append(
                    .init(
                        nsid: nsid,
                        node: NvmetNode(
                            groups: Configfs.groups(nsPath, NvmetConfig.Groups.namespace),
                            enable: Configfs.enable(nsPath)),
                        anaGroupID: Configfs.read(nsPath + "/ana_grpid").flatMap { Int($0) } ?? 0))
            }
            subsystem.allowedHosts = Configfs.list(path + "/allowed_hosts")
            if Configfs.isDirectory(path + "/passthru") {
                subsystem.node.extra["passthru"] = .array([passthruJSON(path + "/passthru")])
            }
            config.subsystems.append(subsystem)
        }
        for name in Configfs.list(root + "/ports") {
            guard let id = Int(name) else { continue }
            let path = portPath(id)
            var port = NvmetConfig.Port(
                portid: id,
                node: NvmetNode(groups: Configfs.groups(path, NvmetConfig.Groups.port), enable: Configfs.enable(path)),
                subsystems: Configfs.list(path + "/subsystems"))
            // nvmetcli always writes ana_groups (empty when the kernel has no ANA).
            port.anaGroups = Configfs.list(path + "/ana_groups").compactMap { group in
                guard let grpid = Int(group) else { return nil }
                let groupPath = path + "/ana_groups/" + group
                return .init(
                    name: String(grpid),
                    node: NvmetNode(
                        groups: Configfs.groups(groupPath, NvmetConfig.Groups.anaGroup),
                        enable: Configfs.enable(groupPath)))
            }
            port.referrals = Configfs.list(path + "/referrals").map { name in
                let refPath = path + "/referrals/" + name
                return .init(
                    name: name,
                    node: NvmetNode(
                        groups: Configfs.groups(refPath, NvmetConfig.Groups.referral), enable: Configfs.enable(refPath))
                )
            }
            config.ports.append(port)
        }
        return config
    }

    /// nvmetcli's Passthru.dump(): the device group, enable and three numbers.
    private func passthruJSON(_ path: String) -> NvmetJSON {
        var members: [String: NvmetJSON] = [:]
        for (group, attrs) in Configfs.groups(path, ["device"]) {
            members[group] = .object(attrs.mapValues { .string($0) })
        }
        if let enable = Configfs.enable(path) { members["enable"] = .int(enable) }
        for key in ["clear_ids", "admin_timeout", "io_timeout"] {
            members[key] = .int(Configfs.read(path + "/" + key).flatMap { Int($0) } ?? 0)
        }
        return .object(members)
    }

    /// Loads nvmet (and a transport) and mounts configfs when needed. Does
    /// nothing when they are there already, so a second run makes no change.
    func prepareKernel(transports: Set<FabricsTransport>, log: ChangeLog) throws {
        if !isLoaded {
            try log.perform("load nvmet") { try Self.modprobe("nvmet", roots: roots) }
            if !log.check && !Configfs.isDirectory(roots.configfs + "/nvmet") && Configfs.list(roots.configfs).isEmpty {
                try log.perform("mount configfs on \(roots.configfs)") {
                    _ = try sys("mount configfs on", roots.configfs) {
                        mount("configfs", roots.configfs, "configfs", 0, nil)
                    }
                }
            }
            if !log.check && !isLoaded {
                throw CachectlError(
                    "open", path: root, errno: ENOENT,
                    hint: "nvmet loaded but its configfs tree is missing; is configfs mounted on \(roots.configfs)?")
            }
        }
        for transport in transports.sorted(by: { $0.rawValue < $1.rawValue })
        where !Self.moduleLoaded(transport.targetModule, roots: roots) {
            try log.perform("load \(transport.targetModule)") {
                try Self.modprobe(transport.targetModule, roots: roots)
            }
        }
    }

    /// A module is loaded (or built in) when /sys/module/NAME exists (dashes become underscores).
    static func moduleLoaded(_ name: String, roots: KernelRoots) -> Bool {
        Configfs.exists(roots.sys + "/module/" + name.replacingDashes())
    }

    static func modprobe(_ name: String, roots: KernelRoots) throws {
        if moduleLoaded(name, roots: roots) { return }
        try ExternalCommand(["modprobe", name]).check(
            hint: "this kernel lacks \(name) (CONFIG_NVME_TARGET*/CONFIG_NVME_*); install its modules package")
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
