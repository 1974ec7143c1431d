import CachectlSystem
import Glibc

/// NVMe Qualified Names (NVMe Base Specification 2.0, 4.5 "NVMe Qualified Names").
public enum NQN {
    /// NVMF_NQN_SIZE in include/linux/nvme.h: longer names are refused by the kernel.
    public static let maximumLength = 223

    /// Prefix of the subsystems cachectl makes: `nqn.2014-08.org.cachectl:NAME`.
    public static let cachectlPrefix = "nqn.2014-08.org.cachectl:"

    /// The subsystem NQN of export NAME.
    public static func forExport(_ name: String) -> String { cachectlPrefix + name }

    /// The export name of a subsystem cachectl made, else nil.
    public static func exportName(of nqn: String) -> String? {
        nqn.hasPrefix(cachectlPrefix) ? String(nqn.dropFirst(cachectlPrefix.count)) : nil
    }

    /// Checks the spec's form `nqn.yyyy-mm.reverse.domain:identifier`, plus what
    /// the kernel and configfs need: at most 223 bytes, no `/` (a configfs
    /// directory name), no `,` or whitespace (the fabrics option string splits on them).
    public static func validate(_ nqn: String, what: String = "NQN", field: FieldPath? = nil) throws(CachectlError) {
        try validateName(nqn, what: what, field: field)
        let bytes = Array(nqn.utf8)
        func digits(_ range: Range<Int>) -> Bool {
            range.upperBound <= bytes.count && bytes[range].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }
        let form =
            "\(what) must look like nqn.2014-08.org.example:name (nqn., a year-month, a reverse domain, a colon, a name): '\(nqn)'"
        guard nqn.hasPrefix("nqn."), digits(4..<8), bytes.count > 12, bytes[8] == 0x2d, digits(9..<11),
            bytes[11] == 0x2e
        else {
            throw .usage(field, form)
        }
        let month = Int(String(decoding: bytes[9..<11], as: UTF8.self)) ?? 0
        guard (1...12).contains(month) else { throw .usage(field, form) }
        let rest = nqn.dropFirst(12)
        guard let colon = rest.firstIndex(of: ":") else { throw .usage(field, form) }
        let domain = rest[..<colon]
        let identifier = rest[rest.index(after: colon)...]
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        let domainOK =
            !labels.isEmpty
            && labels.allSatisfy { label in
                !label.isEmpty && !label.hasPrefix("-")
                    && label.utf8.allSatisfy { c in
                        (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2d
                    }
            }
        guard domainOK, !identifier.isEmpty else { throw .usage(field, form) }
    }

    /// What any subsystem or host name must satisfy to be a configfs directory
    /// and a fabrics option value (nvmetcli configs may use plain names such as
    /// `testnqn`, which the kernel accepts).
    public static func validateName(_ nqn: String, what: String = "NQN", field: FieldPath? = nil) throws(CachectlError)
    {
        guard !nqn.isEmpty, nqn.utf8.count <= maximumLength else {
            throw .usage(field, "\(what) must be 1-\(maximumLength) bytes: '\(nqn)'")
        }
        guard nqn != ".", nqn != "..", nqn.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7f && $0 != 0x2f && $0 != 0x2c })
        else {
            throw .usage(field, "\(what) must not contain '/', ',', spaces or control characters: '\(nqn)'")
        }
    }
}

/// NVMe-oF transports cachectl sets up.
public enum FabricsTransport: String, Codable, Sendable, CaseIterable {
    case tcp, rdma, loop

    /// Target-side kernel module (nvmet's transport).
    public var targetModule: String {
        switch self {
        case .tcp: "nvmet-tcp"
        case .rdma: "nvmet-rdma"
        case .loop: "nvme-loop"
        }
    }

    /// Host-side kernel module.
    public var hostModule: String {
        switch self {
        case .tcp: "nvme-tcp"
        case .rdma: "nvme-rdma"
        case .loop: "nvme-loop"
        }
    }

    /// tcp and rdma listen on an IP address and port; loop has neither.
    public var needsAddress: Bool { self != .loop }

    /// The IANA-assigned NVMe-oF port (4420).
    public static let defaultServicePort = 4420
}

/// A transport address: an IP address and port for tcp and rdma.
public struct FabricsAddress: Sendable, Equatable, Codable {
    public var transport: FabricsTransport
    /// IPv4 or IPv6 literal; nil for loop.
    public var address: String?
    public var port: Int?

    public init(transport: FabricsTransport, address: String?, port: Int?) {
        self.transport = transport
        self.address = address
        self.port = port
    }

    /// `ipv4` or `ipv6` (nvmet's addr_adrfam); `loop` for loop.
    public var family: String {
        guard let address else { return "loop" }
        return address.contains(":") ? "ipv6" : "ipv4"
    }

    public func validate() throws(CachectlError) {
        guard transport.needsAddress else {
            if address != nil || port != nil {
                throw .usage(
                    [address != nil ? "address" : "port"], "address and port do not apply to the loop transport")
            }
            return
        }
        guard let address else {
            throw .usage(["address"], "address is required for \(transport.rawValue): the IP address to use")
        }
        try Self.validateIP(address)
        guard let port else { throw .usage(["port"], "port is required for \(transport.rawValue)") }
        guard (1...65535).contains(port) else {
            throw .usage(["port"], "port must be 1-65535 (NVMe-oF uses 4420): \(port)")
        }
    }

    /// An IPv4 or IPv6 literal, checked with inet_pton(3) (nvmet wants addresses, not host names).
    public static func validateIP(_ address: String) throws(CachectlError) {
        var v4 = in_addr()
        var v6 = in6_addr()
        guard !address.isEmpty, inet_pton(AF_INET, address, &v4) == 1 || inet_pton(AF_INET6, address, &v6) == 1 else {
            throw .usage(["address"], "address must be an IPv4 or IPv6 address (not a host name): '\(address)'")
        }
    }
}
