import CachectlSystem

/// Attribute groups of one configfs object, as nvmetcli names them: the file
/// `attr_allow_any_host` is group `attr`, attribute `allow_any_host`.
public typealias AttributeGroups = [String: [String: String]]

/// The attribute groups, `enable` and unmodelled keys every nvmet object has.
/// Keys cachectl does not model are kept verbatim, so a file from a newer
/// nvmetcli survives a load and a save unchanged.
public struct NvmetNode: Equatable, Sendable {
    public var groups: AttributeGroups = [:]
    /// The object's `enable` file (namespaces, referrals), when it has one.
    public var enable: Int?
    public var extra: [String: NvmetJSON] = [:]

    public init(groups: AttributeGroups = [:], enable: Int? = nil) {
        self.groups = groups
        self.enable = enable
    }

    public func value(_ group: String, _ name: String) -> String? { groups[group]?[name] }
}

/// An nvmet target configuration in nvmetcli's JSON layout (`nvmetcli save`):
/// `{"hosts": [...], "ports": [...], "subsystems": [...]}`.
public struct NvmetConfig: Equatable, Sendable {
    public struct Host: Equatable, Sendable {
        public var nqn: String
        public var node = NvmetNode()
        public init(nqn: String, node: NvmetNode = NvmetNode()) {
            self.nqn = nqn
            self.node = node
        }
    }

    public struct Namespace: Equatable, Sendable {
        public var nsid: Int
        public var node = NvmetNode()
        /// `ana_grpid` as a number (nvmetcli writes it beside the `ana` group).
        public var anaGroupID: Int?
        public init(nsid: Int, node: NvmetNode = NvmetNode(), anaGroupID: Int? = nil) {
            self.nsid = nsid
            self.node = node
            self.anaGroupID = anaGroupID
        }
        public var devicePath: String? { node.value("device", "path") }
    }

    public struct Subsystem: Equatable, Sendable {
        public var nqn: String
        public var node = NvmetNode()
        public var namespaces: [Namespace] = []
        public var allowedHosts: [String] = []
        public init(
            nqn: String, node: NvmetNode = NvmetNode(), namespaces: [Namespace] = [], allowedHosts: [String] = []
        ) {
            self.nqn = nqn
            self.node = node
            self.namespaces = namespaces
            self.allowedHosts = allowedHosts
        }
        public var allowAnyHost: Bool { node.value("attr", "allow_any_host") == "1" }
    }

    /// A referral or an ANA group below a port.
    public struct PortChild: Equatable, Sendable {
        /// Referral name, or ANA group id as text.
        public var name: String
        public var node = NvmetNode()
    }

    public struct Port: Equatable, Sendable {
        public var portid: Int
        public var node = NvmetNode()
        /// NQNs of the subsystems linked to this port.
        public var subsystems: [String] = []
        public var referrals: [PortChild] = []
        /// nil when the file had no `ana_groups` key (older nvmetcli).
        public var anaGroups: [PortChild]?
        public init(portid: Int, node: NvmetNode = NvmetNode(), subsystems: [String] = []) {
            self.portid = portid
            self.node = node
            self.subsystems = subsystems
        }
        public var transport: String? { node.value("addr", "trtype") }
        public var address: String? { node.value("addr", "traddr") }
        public var serviceID: String? { node.value("addr", "trsvcid") }
    }

    /// Root attribute groups (`discovery`).
    public var node = NvmetNode()
    public var hosts: [Host] = []
    public var ports: [Port] = []
    public var subsystems: [Subsystem] = []

    public init(hosts: [Host] = [], ports: [Port] = [], subsystems: [Subsystem] = []) {
        self.hosts = hosts
        self.ports = ports
        self.subsystems = subsystems
    }

    public func subsystem(_ nqn: String) -> Subsystem? { subsystems.first { $0.nqn == nqn } }
    public func port(_ id: Int) -> Port? { ports.first { $0.portid == id } }

    /// Attribute group names per object kind, as nvmetcli's `attr_groups`.
    enum Groups {
        static let root = ["discovery"]
        static let host = ["dhchap"]
        static let subsystem = ["attr"]
        static let namespace = ["device", "ana", "resv"]
        static let port = ["addr", "param"]
        static let referral = ["addr"]
        static let anaGroup = ["ana"]
    }
}

// MARK: - JSON

extension NvmetConfig {
    /// Reads nvmetcli's JSON. Unknown keys are kept; missing lists are empty.
    public init(json: NvmetJSON) throws(CachectlError) {
        guard case .object(let members) = json else {
            throw CachectlError.usage(nil, "the top level must be a JSON object")
        }
        node = try Self.node(members, groups: Groups.root, known: ["hosts", "ports", "subsystems"], at: "root")
        for (i, item) in try Self.list(members["hosts"], at: "hosts").enumerated() {
            let at = "hosts[\(i)]"
            let object = try Self.object(item, at: at)
            hosts.append(
                Host(
                    nqn: try Self.string(object["nqn"], at: at + ".nqn"),
                    node: try Self.node(object, groups: Groups.host, known: ["nqn"], at: at)))
        }
        for (i, item) in try Self.list(members["subsystems"], at: "subsystems").enumerated() {
            let at = "subsystems[\(i)]"
            let object = try Self.object(item, at: at)
            var subsystem = Subsystem(
                nqn: try Self.string(object["nqn"], at: at + ".nqn"),
                node: try Self.node(
                    object, groups: Groups.subsystem, known: ["nqn", "namespaces", "allowed_hosts"], at: at))
            for (j, nsItem) in try Self.list(object["namespaces"], at: at + ".namespaces").enumerated() {
                let nsAt = "\(at).namespaces[\(j)]"
                let nsObject = try Self.object(nsItem, at: nsAt)
                subsystem.namespaces.append(
                    Namespace(
                        nsid: try Self.int(nsObject["nsid"], at: nsAt + ".nsid"),
                        node: try Self.node(
                            nsObject, groups: Groups.namespace, known: ["nsid", "ana_grpid"], at: nsAt),
                        anaGroupID: try nsObject["ana_grpid"].map { v throws(CachectlError) in
                            try Self.int(v, at: nsAt + ".ana_grpid")
                        }))
            }
            subsystem.allowedHosts = try Self.list(object["allowed_hosts"], at: at + ".allowed_hosts").enumerated().map
            {
                j, host throws(CachectlError) in try Self.string(host, at: "\(at).allowed_hosts[\(j)]")
            }
            subsystems.append(subsystem)
        }
        for (i, item) in try Self.list(members["ports"], at: "ports").enumerated() {
            let at = "ports[\(i)]"
            let object = try Self.object(item, at: at)
            var port = Port(
                portid: try Self.int(object["portid"], at: at + ".portid"),
                node: try Self.node(
                    object, groups: Groups.port, known: ["portid", "subsystems", "referrals", "ana_groups"], at: at))
            port.subsystems = try Self.list(object["subsystems"], at: at + ".subsystems").enumerated().map {
                j, nqn throws(CachectlError) in try Self.string(nqn, at: "\(at).subsystems[\(j)]")
            }
            port.referrals = try Self.list(object["referrals"], at: at + ".referrals").enumerated().map {
                j, item throws(CachectlError) in
                let rAt = "\(at).referrals[\(j)]"
                let r = try Self.object(item, at: rAt)
                return PortChild(
                    name: try Self.string(r["name"], at: rAt + ".name"),
                    node: try Self.node(r, groups: Groups.referral, known: ["name"], at: rAt))
            }
            if object["ana_groups"] != nil {
                port.anaGroups = try Self.list(object["ana_groups"], at: at + ".ana_groups").enumerated().map {
                    j, item throws(CachectlError) in
                    let gAt = "\(at).ana_groups[\(j)]"
                    let g = try Self.object(item, at: gAt)
                    return PortChild(
                        name: String(try Self.int(g["grpid"], at: gAt + ".grpid")),
                        node: try Self.node(g, groups: Groups.anaGroup, known: ["grpid"], at: gAt))
                }
            }
            ports.append(port)
        }
    }

    /// Parses a file's bytes.
    public init(jsonBytes: [UInt8]) throws(CachectlError) {
        let json: NvmetJSON
        do { json = try NvmetJSON.parse(jsonBytes) } catch { throw CachectlError.usage(nil, "not JSON: \(error)") }
        try self.init(json: json)
    }

    /// The config as nvmetcli's `dump()` builds it.
    public var json: NvmetJSON {
        var root = Self.members(node)
        root["hosts"] = .array(
            hosts.map { host in
                var m = Self.members(host.node)
                m["nqn"] = .string(host.nqn)
                return .object(m)
            })
        root["subsystems"] = .array(
            subsystems.map { s in
                var m = Self.members(s.node)
                m["nqn"] = .string(s.nqn)
                m["allowed_hosts"] = .array(s.allowedHosts.map { .string($0) })
                m["namespaces"] = .array(
                    s.namespaces.map { ns in
                        var n = Self.members(ns.node)
                        n["nsid"] = .int(ns.nsid)
                        if let id = ns.anaGroupID { n["ana_grpid"] = .int(id) }
                        return .object(n)
                    })
                return .object(m)
            })
        root["ports"] = .array(
            ports.map { p in
                var m = Self.members(p.node)
                m["portid"] = .int(p.portid)
                m["subsystems"] = .array(p.subsystems.map { .string($0) })
                m["referrals"] = .array(
                    p.referrals.map { r in
                        var o = Self.members(r.node)
                        o["name"] = .string(r.name)
                        return .object(o)
                    })
                if let groups = p.anaGroups {
                    m["ana_groups"] = .array(
                        groups.map { g in
                            var o = Self.members(g.node)
                            o["grpid"] = Int(g.name).map { .int($0) } ?? .string(g.name)
                            return .object(o)
                        })
                }
                return .object(m)
            })
        return .object(root)
    }

    private static func members(_ node: NvmetNode) -> [String: NvmetJSON] {
        var m = node.extra
        for (group, attrs) in node.groups { m[group] = .object(attrs.mapValues { .string($0) }) }
        if let enable = node.enable { m["enable"] = .int(enable) }
        return m
    }

    private static func node(_ object: [String: NvmetJSON], groups: [String], known: Set<String>, at: String)
        throws(CachectlError) -> NvmetNode
    {
        var node = NvmetNode()
        for (key, value) in object where !known.contains(key) {
            if groups.contains(key) {
                guard case .object(let attrs) = value else {
                    throw CachectlError.usage(nil, "\(at).\(key) must be an object of attributes")
                }
                var strings: [String: String] = [:]
                for (name, v) in attrs {
                    // nvmetcli writes str(value), so numbers are accepted too.
                    switch v {
                    case .string(let s): strings[name] = s
                    case .int(let n): strings[name] = String(n)
                    default: throw CachectlError.usage(nil, "\(at).\(key).\(name) must be a string")
                    }
                }
                node.groups[key] = strings
            } else if key == "enable" {
                switch value {
                case .int(let n): node.enable = n
                case .bool(let b): node.enable = b ? 1 : 0
                case .string(let s) where Int(s) != nil: node.enable = Int(s)
                default: throw CachectlError.usage(nil, "\(at).enable must be 0 or 1")
                }
            } else {
                node.extra[key] = value
            }
        }
        return node
    }

    private static func object(_ value: NvmetJSON, at: String) throws(CachectlError) -> [String: NvmetJSON] {
        guard case .object(let m) = value else { throw CachectlError.usage(nil, "\(at) must be an object") }
        return m
    }

    private static func list(_ value: NvmetJSON?, at: String) throws(CachectlError) -> [NvmetJSON] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw CachectlError.usage(nil, "\(at) must be a list") }
        return items
    }

    private static func string(_ value: NvmetJSON?, at: String) throws(CachectlError) -> String {
        guard case .string(let s)? = value else { throw CachectlError.usage(nil, "\(at) must be a string") }
        return s
    }

    private static func int(_ value: NvmetJSON?, at: String) throws(CachectlError) -> Int {
        switch value {
        case .int(let n)?: return n
        case .string(let s)? where Int(s) != nil: return Int(s)!
        default: throw CachectlError.usage(nil, "\(at) must be a number")
        }
    }
}
