import CachectlSystem
import Glibc

/// What the host does when the target goes away (fabrics options; see
/// drivers/nvme/host/fabrics.c): the controller reconnects every
/// `reconnectDelay` seconds; I/O waiting on it fails after `fastIOFail`
/// seconds (before that it is queued, so a short outage costs a pause, not an
/// error); after `controllerLoss` seconds the controller and its /dev node are
/// removed.
public struct LossTimeouts: Sendable, Equatable {
    public var reconnectDelay: Int
    public var fastIOFail: Int
    public var controllerLoss: Int

    public init(reconnectDelay: Int, fastIOFail: Int, controllerLoss: Int) {
        self.reconnectDelay = reconnectDelay
        self.fastIOFail = fastIOFail
        self.controllerLoss = controllerLoss
    }

    /// For a RAM tier, whose models all have a cold copy: a reader gets EIO
    /// about 5 s after the keep-alive (5 s) notices the target is gone, rather
    /// than hanging for the kernel's default 600 s; reconnecting every 2 s
    /// rides out a short outage; after 30 s the namespace is given up, so `tier
    /// health` sees the tier gone and `tier health --restore` connects anew.
    public static let tier = LossTimeouts(reconnectDelay: 2, fastIOFail: 5, controllerLoss: 30)
}

/// What to connect to, as `nvmet connect` takes it.
public struct ConnectSpec: Sendable, Equatable {
    public var address: FabricsAddress
    /// The subsystem NQN to connect to.
    public var nqn: String
    /// This host's NQN; nil uses /etc/nvme/hostnqn, else the kernel's default.
    public var hostNQN: String?
    /// nil keeps the kernel's defaults (reconnect every 10 s for 600 s, I/O queued
    /// meanwhile); not sent for loop, which has nothing to reconnect.
    public var timeouts: LossTimeouts?

    public init(address: FabricsAddress, nqn: String, hostNQN: String? = nil, timeouts: LossTimeouts? = nil) {
        self.address = address
        self.nqn = nqn
        self.hostNQN = hostNQN
        self.timeouts = timeouts
    }

    public func validate() throws(CachectlError) {
        try address.validate()
        try NQN.validateName(nqn, what: "NQN", field: ["nqn"])
        if let hostNQN { try NQN.validate(hostNQN, what: "host NQN", field: ["host_nqn"]) }
        if let t = timeouts {
            guard t.reconnectDelay >= 1, t.fastIOFail >= 0, t.controllerLoss >= t.reconnectDelay,
                t.fastIOFail <= t.controllerLoss
            else {
                throw CachectlError.usage(
                    ["timeouts"],
                    "loss timeouts need reconnect_delay >= 1, fast_io_fail_tmo <= ctrl_loss_tmo, ctrl_loss_tmo >= reconnect_delay"
                )
            }
        }
    }

    /// The option string /dev/nvme-fabrics takes (drivers/nvme/host/fabrics.c opt_tokens).
    public func options(hostNQN: String?, hostID: String? = nil) -> String {
        var parts = ["transport=\(address.transport.rawValue)"]
        if let ip = address.address { parts.append("traddr=\(ip)") }
        if let port = address.port { parts.append("trsvcid=\(port)") }
        parts.append("nqn=\(nqn)")
        if let hostNQN { parts.append("hostnqn=\(hostNQN)") }
        if let hostID { parts.append("hostid=\(hostID)") }
        // The loop transport has no link to lose: it refuses these options (its
        // allowed_opts is traddr only), and the kernel answers EINVAL.
        if let timeouts, address.transport.needsAddress {
            parts.append("reconnect_delay=\(timeouts.reconnectDelay)")
            parts.append("fast_io_fail_tmo=\(timeouts.fastIOFail)")
            parts.append("ctrl_loss_tmo=\(timeouts.controllerLoss)")
        }
        return parts.joined(separator: ",")
    }

    /// The host ID to send with `hostNQN`. Newer kernels (seen on 6.12) refuse a
    /// host ID already in use under another host NQN ("found same hostid ... but
    /// different hostnqn"), and without `hostid=` every NQN gets the kernel's one
    /// default ID. So: the UUID in an NQN of nvme-cli's `...:uuid:UUID` form, else
    /// /etc/nvme/hostid when the NQN is /etc/nvme/hostnqn's, else a UUID derived
    /// from the NQN itself (the same NQN always gets the same ID).
    public static func hostID(for hostNQN: String, etc: String = "/etc") -> String {
        if let range = hostNQN.ranges(of: ":uuid:").last {
            let uuid = String(hostNQN[range.upperBound...])
            if uuid.count == 36, uuid.allSatisfy({ $0.isHexDigit || $0 == "-" }) { return uuid.lowercased() }
        }
        if Configfs.read(etc + "/nvme/hostnqn") == hostNQN, let id = Configfs.read(etc + "/nvme/hostid"), id.count == 36
        {
            return id
        }
        // Two FNV-1a 64-bit hashes of the NQN, marked as a version 8 UUID (RFC 9562).
        func fnv(_ seed: UInt64) -> UInt64 {
            hostNQN.utf8.reduce(seed) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        }
        var bytes =
            withUnsafeBytes(of: fnv(0xcbf2_9ce4_8422_2325).bigEndian, Array.init)
            + withUnsafeBytes(of: fnv(0x8422_2325_cbf2_9ce4).bigEndian, Array.init)
        bytes[6] = (bytes[6] & 0x0f) | 0x80
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let chars = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(chars[$0]) }.joined(separator: "-")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// A fabrics controller this host has, from /sys/class/nvme-fabrics/ctl/nvmeN.
public struct FabricsController: Encodable, Sendable, Equatable {
    /// `nvme3`.
    public var name: String
    public var subsystemNQN: String
    public var hostNQN: String?
    public var transport: String
    /// `traddr=127.0.0.1,trsvcid=4420` as the kernel reports it.
    public var address: String
    /// `live`, `connecting`, `deleting`, ...
    public var state: String
    /// Namespace block devices: `/dev/nvme3n1`.
    public var devices: [String]

    /// One `key=value` of `address`.
    public func addressField(_ key: String) -> String? {
        address.split(separator: ",").lazy.compactMap { part -> String? in
            let kv = part.split(separator: "=", maxSplits: 1)
            return kv.count == 2 && kv[0] == key ? String(kv[1]) : nil
        }.first
    }
}

/// What `connect` and `disconnect` did.
public struct ConnectChange: Encodable, Sendable {
    public var changed: Bool
    /// `connected`, `already connected`, `disconnected`, `absent`.
    public var action: String
    public var controller: FabricsController?
    /// The first namespace's block device.
    public var device: String?
}

/// The NVMe-oF host side: connect through /dev/nvme-fabrics, find namespaces
/// in sysfs, disconnect with delete_controller.
public struct FabricsHost: Sendable {
    public let roots: KernelRoots

    public init(roots: KernelRoots = .system) { self.roots = roots }

    var controllerClass: String { roots.sys + "/class/nvme-fabrics/ctl" }

    /// Fabrics controllers, by name.
    public func controllers() -> [FabricsController] {
        Configfs.list(controllerClass).filter { Self.isControllerName($0) }.sorted().compactMap(controller(named:))
    }

    public func controller(named name: String) -> FabricsController? {
        let dir = controllerClass + "/" + name
        guard let nqn = Configfs.read(dir + "/subsysnqn") else { return nil }
        return FabricsController(
            name: name, subsystemNQN: nqn, hostNQN: Configfs.read(dir + "/hostnqn"),
            transport: Configfs.read(dir + "/transport") ?? "?", address: Configfs.read(dir + "/address") ?? "",
            state: Configfs.read(dir + "/state") ?? "?", devices: namespaceDevices(of: dir))
    }

    /// Block devices below a controller: `nvme3n1` without native multipath, or
    /// the path device `nvme2c3n1` whose head `nvme2n1` is what has a /dev node.
    func namespaceDevices(of dir: String) -> [String] {
        var heads: [String] = []
        for entry in Configfs.list(dir) {
            guard let (subsystem, ns) = Self.parseNamespaceName(entry) else { continue }
            let head = "nvme\(subsystem)n\(ns)"
            if !heads.contains(head) { heads.append(head) }
        }
        return heads.sorted().map { roots.dev + "/" + $0 }
    }

    /// `nvme2c3n1` → (2, 1); `nvme3n1` → (3, 1); anything else nil.
    static func parseNamespaceName(_ name: String) -> (Int, Int)? {
        guard name.hasPrefix("nvme") else { return nil }
        let rest = name.dropFirst(4)
        let digits = rest.prefix { $0.isNumber }
        guard let first = Int(digits) else { return nil }
        var tail = rest.dropFirst(digits.count)
        if tail.hasPrefix("c") {
            let c = tail.dropFirst().prefix { $0.isNumber }
            guard !c.isEmpty else { return nil }
            tail = tail.dropFirst(1 + c.count)
        }
        guard tail.hasPrefix("n"), let ns = Int(tail.dropFirst()), tail.dropFirst().allSatisfy(\.isNumber) else {
            return nil
        }
        return (first, ns)
    }

    static func isControllerName(_ name: String) -> Bool {
        name.hasPrefix("nvme") && name.count > 4 && name.dropFirst(4).allSatisfy(\.isNumber)
    }

    /// This host's NQN: /etc/nvme/hostnqn when present (what nvme-cli uses).
    public func defaultHostNQN() -> String? {
        Configfs.read(roots.etc + "/nvme/hostnqn").flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A controller to the same subsystem at the same address (and host NQN), in any state.
    public func matches(_ c: FabricsController, _ spec: ConnectSpec, hostNQN: String?) -> Bool {
        c.subsystemNQN == spec.nqn && c.transport == spec.address.transport.rawValue
            && c.addressField("traddr") == spec.address.address
            && c.addressField("trsvcid") == spec.address.port.map(String.init)
            && (hostNQN == nil || c.hostNQN == hostNQN)
    }

    /// A live controller to the same subsystem at the same address (and host NQN).
    func existing(_ spec: ConnectSpec, hostNQN: String?) -> FabricsController? {
        controllers().first { c in matches(c, spec, hostNQN: hostNQN) && c.state != "deleting" }
    }

    /// The block device of an existing connection to `spec`, if there is one.
    public func connect(existing spec: ConnectSpec) -> String? {
        existing(spec, hostNQN: spec.hostNQN ?? defaultHostNQN())?.devices.first
    }

    /// Connects (idempotent: an existing live connection is reused) and waits
    /// for the namespace's block device to appear.
    public func connect(_ spec: ConnectSpec, check: Bool = false, timeout: Double = 20) throws -> ConnectChange {
        try spec.validate()
        let hostNQN = spec.hostNQN ?? defaultHostNQN()
        if let found = existing(spec, hostNQN: hostNQN) {
            return ConnectChange(
                changed: false, action: "already connected", controller: found, device: found.devices.first)
        }
        if check { return ConnectChange(changed: true, action: "would connect", controller: nil, device: nil) }
        try NVMeTarget.modprobe(spec.address.transport.hostModule, roots: roots)
        let control = roots.dev + "/nvme-fabrics"
        let file = try OpenFile(control, flags: O_RDWR)
        let options = spec.options(
            hostNQN: hostNQN, hostID: hostNQN.map { ConnectSpec.hostID(for: $0, etc: roots.etc) })
        let bytes = Array(options.utf8)
        let written = bytes.withUnsafeBytes { raw in retryingEINTR { write(file.fd, raw.baseAddress, raw.count) } }
        if written < 0 {
            let code = errno
            throw CachectlError(
                "connect to \(spec.nqn) at \(options)", path: control, errno: code,
                hint:
                    "the target refused or could not be reached: is this host (\(hostNQN ?? "the kernel's default host NQN")) "
                    + "in the subsystem's allowed hosts, and is the port listening? The kernel log (dmesg) says which")
        }
        // The kernel answers the write with "instance=N,cntlid=M".
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { raw in retryingEINTR { read(file.fd, raw.baseAddress, raw.count) } }
        let answer = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        guard
            let instance = answer.split(whereSeparator: { $0 == "," || $0 == "\n" })
                .first(where: { $0.hasPrefix("instance=") }).flatMap({ Int($0.dropFirst(9)) })
        else {
            throw CachectlError.failed(
                "connect to \(spec.nqn)", path: control, hint: "unexpected answer '\(answer)' from the kernel")
        }
        let name = "nvme\(instance)"
        let deadline = Monotonic.now() + timeout
        while true {
            if let c = controller(named: name), let device = c.devices.first, Configfs.exists(device) {
                return ConnectChange(changed: true, action: "connected", controller: c, device: device)
            }
            if Monotonic.now() > deadline {
                throw CachectlError.failed(
                    "connect to \(spec.nqn)", path: controllerClass + "/" + name,
                    hint:
                        "connected as \(name), but no namespace block device appeared in \(Int(timeout)) s; is a namespace enabled on the target?"
                )
            }
            usleep(50_000)
        }
    }

    /// Controllers a disconnect target names: a subsystem NQN, `nvmeN`, or `/dev/nvmeXnY`.
    public func resolve(_ target: String) -> [FabricsController] {
        let all = controllers()
        if target.hasPrefix("/")
            || target.contains("n") && Self.parseNamespaceName(Path.lastComponent(of: target)) != nil
        {
            let device = target.hasPrefix("/") ? target : roots.dev + "/" + target
            let matches = all.filter { $0.devices.contains(device) }
            if !matches.isEmpty || target.hasPrefix("/") { return matches }
        }
        if Self.isControllerName(target) { return all.filter { $0.name == target } }
        return all.filter { $0.subsystemNQN == target }
    }

    /// Deletes controllers (`delete_controller`), then waits for their devices to go.
    public func disconnect(_ controllers: [FabricsController], check: Bool = false, timeout: Double = 20) throws {
        guard !check else { return }
        for c in controllers {
            let path = controllerClass + "/" + c.name + "/delete_controller"
            if Configfs.exists(path) { try KernelAttribute.write("1", to: path) }
        }
        let deadline = Monotonic.now() + timeout
        while controllers.contains(where: { c in
            Configfs.exists(controllerClass + "/" + c.name) || c.devices.contains(where: Configfs.exists)
        }) {
            if Monotonic.now() > deadline {
                throw CachectlError.failed(
                    "disconnect",
                    hint:
                        "controllers still present after \(Int(timeout)) s: \(controllers.map(\.name).joined(separator: ", "))"
                )
            }
            usleep(50_000)
        }
    }
}
