import CachectlMount
import CachectlSystem
import Glibc

/// Creating, changing and removing single configfs objects, each step logged
/// and only taken when the object differs from what is wanted.
extension NVMeTarget {
    func ensureHost(_ nqn: String, groups: AttributeGroups = [:], log: ChangeLog) throws {
        let path = hostPath(nqn)
        if !Configfs.isDirectory(path) { try log.mkdir(path, what: "host \(nqn)") }
        try setGroups(groups, in: path, what: "host \(nqn)", log: log)
    }

    func ensureSubsystem(_ nqn: String, log: ChangeLog) throws {
        let path = subsystemPath(nqn)
        if !Configfs.isDirectory(path) { try log.mkdir(path, what: "subsystem \(nqn)") }
    }

    /// Makes namespace NSID match `node`: device attributes are written while it
    /// is disabled (the kernel refuses them on an enabled namespace with EBUSY),
    /// then it is enabled as asked. A regular file on tmpfs gets `buffered_io`,
    /// without which enabling fails (tmpfs has no O_DIRECT on 6.1).
    func ensureNamespace(_ nqn: String, _ ns: NvmetConfig.Namespace, log: ChangeLog) throws {
        let path = subsystemPath(nqn) + "/namespaces/\(ns.nsid)"
        let what = "\(nqn) namespace \(ns.nsid)"
        let existed = Configfs.isDirectory(path)
        if !existed { try log.mkdir(path, what: "namespace \(ns.nsid) of \(nqn)") }
        if let device = ns.devicePath, let backing = RAMBacking.parse(device, backingRoot: backingRoot),
            !backing.isReady(roots: roots)
        {
            try backing.ensure(roots: roots, log: log)
        }
        let enabled = Configfs.read(path + "/enable") == "1"
        let differs =
            ns.node.groups.contains { group, attrs in
                attrs.contains { name, value in Configfs.read(path + "/\(group)_\(name)") != value }
            } || (ns.devicePath.map(needsBufferedIO) ?? false) && Configfs.read(path + "/buffered_io") != "1"
        if differs && enabled && existed {
            try log.set(path + "/enable", to: "0", what: "\(what) enable", revertTo: "1")
        }
        if differs {
            // device_path first: the kernel checks it when the others are written.
            for group in ns.node.groups.keys.sorted(by: { a, _ in a == "device" }) {
                for (name, value) in ns.node.groups[group]!.sorted(by: { a, _ in a.key == "path" }) {
                    try log.set(path + "/\(group)_\(name)", to: value, what: "\(what) \(group)_\(name)")
                }
            }
            if let device = ns.devicePath, needsBufferedIO(device) {
                try log.set(path + "/buffered_io", to: "1", what: "\(what) buffered_io")
            }
        }
        if let id = ns.anaGroupID, id > 0, ns.node.groups["ana"]?["grpid"] == nil, Configfs.exists(path + "/ana_grpid")
        {
            try log.set(path + "/ana_grpid", to: String(id), what: "\(what) ana_grpid")
        }
        let wantEnabled = ns.node.enable ?? (enabled ? 1 : 0)
        try log.set(path + "/enable", to: String(wantEnabled), what: "\(what) enable", revertTo: "0")
    }

    /// A regular file on tmpfs (or a path that will be one of our backing files).
    func needsBufferedIO(_ device: String) -> Bool {
        if RAMBacking.parse(device, backingRoot: backingRoot) != nil { return true }
        var st = stat()
        guard stat(device, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return false }
        return RAMBacking.isTmpfsMount(Self.mountPoint(of: device, roots: roots) ?? "", roots: roots)
    }

    /// The mount point holding `path` (the longest mount point prefix in mountinfo).
    static func mountPoint(of path: String, roots: KernelRoots) -> String? {
        guard let mounts = try? MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo") else { return nil }
        var best: String?
        for point in mounts.map(\.target) {
            let prefix = point == "/" ? "/" : point + "/"
            if (path == point || path.hasPrefix(prefix)) && point.count >= (best?.count ?? 0) { best = point }
        }
        return best
    }

    func allowHost(_ host: String, in nqn: String, log: ChangeLog) throws {
        let link = subsystemPath(nqn) + "/allowed_hosts/" + host
        if !Configfs.exists(link) { try log.symlink(hostPath(host), at: link, what: "allow host \(host) into \(nqn)") }
    }

    /// Creates a port or updates its attributes. Address attributes cannot change
    /// while subsystems are linked to it (the kernel answers EACCES).
    func ensurePort(_ id: Int, groups: AttributeGroups, log: ChangeLog) throws {
        let path = portPath(id)
        if !Configfs.isDirectory(path) { try log.mkdir(path, what: "port \(id)") }
        let linked = !Configfs.list(path + "/subsystems").isEmpty
        // trtype and adrfam before the address itself, as nvmetcli's examples do.
        let order = ["trtype", "adrfam", "traddr", "trsvcid", "treq", "tsas"]
        for group in groups.keys.sorted() {
            let attrs = groups[group]!.sorted {
                (order.firstIndex(of: $0.key) ?? 99, $0.key) < (order.firstIndex(of: $1.key) ?? 99, $1.key)
            }
            for (name, value) in attrs where Configfs.read(path + "/\(group)_\(name)") != value {
                if linked && group == "addr" {
                    throw CachectlError.failed(
                        "change port \(id) \(group)_\(name) to \(value)", path: path,
                        hint:
                            "subsystems are linked to the port, so its address is fixed; unexport them (or restore --replace)"
                    )
                }
                try log.set(path + "/\(group)_\(name)", to: value, what: "port \(id) \(group)_\(name)")
            }
        }
    }

    func linkPort(_ id: Int, to nqn: String, log: ChangeLog) throws {
        let link = portPath(id) + "/subsystems/" + nqn
        if !Configfs.exists(link) { try log.symlink(subsystemPath(nqn), at: link, what: "port \(id) → \(nqn)") }
    }

    func setGroups(_ groups: AttributeGroups, in path: String, what: String, log: ChangeLog) throws {
        for group in groups.keys.sorted() {
            for (name, value) in groups[group]!.sorted(by: { $0.key < $1.key }) {
                try log.set(path + "/\(group)_\(name)", to: value, what: "\(what) \(group)_\(name)")
            }
        }
    }

    // MARK: removal, in the order configfs allows

    /// Unlinks the subsystem from every port, then (when `removeEmptyPorts`)
    /// removes ports left with no subsystem and no referral.
    func unlinkFromPorts(_ nqn: String, keep: Int? = nil, removeEmptyPorts: Bool, log: ChangeLog) throws {
        for name in Configfs.list(root + "/ports") {
            guard let id = Int(name), id != keep else { continue }
            let link = portPath(id) + "/subsystems/" + nqn
            guard Configfs.exists(link) || Configfs.list(portPath(id) + "/subsystems").contains(nqn) else { continue }
            try log.unlink(link, what: "port \(id) → \(nqn)")
            if removeEmptyPorts
                && Configfs.list(portPath(id) + "/subsystems").filter({ $0 != nqn || !log.check }).isEmpty
                && Configfs.list(portPath(id) + "/referrals").isEmpty
            {
                try deletePort(id, log: log)
            }
        }
    }

    /// Disables and removes namespaces, unlinks allowed hosts, removes the
    /// subsystem; releases the RAM of namespaces cachectl backed.
    func deleteSubsystem(_ nqn: String, log: ChangeLog) throws {
        let path = subsystemPath(nqn)
        guard Configfs.isDirectory(path) else { return }
        try unlinkFromPorts(nqn, removeEmptyPorts: false, log: log)
        var backings: [RAMBacking] = []
        for name in Configfs.list(path + "/namespaces") {
            if let device = Configfs.read(path + "/namespaces/\(name)/device_path"),
                let backing = RAMBacking.parse(device, backingRoot: backingRoot)
            {
                backings.append(backing)
            }
            try deleteNamespace(nqn, nsid: name, log: log)
        }
        for host in Configfs.list(path + "/allowed_hosts") {
            try log.unlink(path + "/allowed_hosts/" + host, what: "allowed host \(host) of \(nqn)")
        }
        try log.rmdir(path, what: "subsystem \(nqn)")
        for backing in backings { try backing.release(roots: roots, log: log) }
    }

    func deleteNamespace(_ nqn: String, nsid: String, log: ChangeLog) throws {
        let path = subsystemPath(nqn) + "/namespaces/" + nsid
        if Configfs.read(path + "/enable") == "1" {
            try log.set(path + "/enable", to: "0", what: "\(nqn) namespace \(nsid) enable")
        }
        try log.rmdir(path, what: "namespace \(nsid) of \(nqn)")
    }

    /// Unlinks its subsystems, removes ANA groups (group 1 is the kernel's) and
    /// referrals, then the port.
    func deletePort(_ id: Int, log: ChangeLog) throws {
        let path = portPath(id)
        guard Configfs.isDirectory(path) else { return }
        for nqn in Configfs.list(path + "/subsystems") where !log.check || Configfs.exists(path + "/subsystems/" + nqn)
        {
            if !log.steps.contains("unlink port \(id) → \(nqn)") {
                try log.unlink(path + "/subsystems/" + nqn, what: "port \(id) → \(nqn)")
            }
        }
        for group in Configfs.list(path + "/ana_groups") where group != "1" {
            try log.rmdir(path + "/ana_groups/" + group, what: "port \(id) ANA group \(group)")
        }
        for referral in Configfs.list(path + "/referrals") {
            try log.rmdir(path + "/referrals/" + referral, what: "port \(id) referral \(referral)")
        }
        try log.rmdir(path, what: "port \(id)")
    }

    /// Removes a host entry, unless a subsystem still allows it.
    func deleteHostIfUnused(_ nqn: String, log: ChangeLog, ignoring: String? = nil) throws {
        guard Configfs.isDirectory(hostPath(nqn)) else { return }
        for subsystem in Configfs.list(root + "/subsystems") where subsystem != ignoring {
            if Configfs.exists(subsystemPath(subsystem) + "/allowed_hosts/" + nqn) { return }
        }
        try log.rmdir(hostPath(nqn), what: "host \(nqn)")
    }
}
