import CachectlNVMeOF
import CachectlSystem
import CachectlTiers

/// How nvmeof tiers connect and disconnect: FabricsHost, with the loss
/// timeouts chosen for tiers (LossTimeouts.tier).
public struct FabricsTierLink: RemoteNamespaceLink {
    public init() {}

    public static func connectSpec(_ remote: RemoteNamespace) throws -> ConnectSpec {
        guard let transport = FabricsTransport(rawValue: remote.transport) else {
            throw CachectlError.usage(["remote", "transport"], "unknown transport \(remote.transport)")
        }
        let spec = ConnectSpec(
            address: FabricsAddress(transport: transport, address: remote.address, port: remote.port),
            nqn: remote.nqn, hostNQN: remote.hostNQN, timeouts: .tier)
        do throws(CachectlError) {
            try spec.validate()
        } catch {
            throw error.within(["remote"])
        }
        return spec
    }

    public func connect(_ remote: RemoteNamespace) throws -> String {
        let host = FabricsHost()
        let spec = try Self.connectSpec(remote)
        // A controller still reconnecting to a target that went away has no
        // usable namespace, and the tier makes a new filesystem anyway: start afresh.
        let hostNQN = spec.hostNQN ?? host.defaultHostNQN()
        let stale = host.controllers().filter {
            host.matches($0, spec, hostNQN: hostNQN) && $0.state != "live" && $0.state != "deleting"
        }
        if !stale.isEmpty { try host.disconnect(stale) }
        let change = try host.connect(spec)
        guard let device = change.device else {
            throw CachectlError.failed(
                "connect to \(remote.summary)",
                hint: "connected, but it has no namespace; is one enabled on the target?")
        }
        return device
    }

    public func controllers(of remote: RemoteNamespace) throws -> [String] {
        try matching(remote).map(\.name)
    }

    public func disconnect(_ remote: RemoteNamespace) throws {
        let controllers = try matching(remote)
        if !controllers.isEmpty { try FabricsHost().disconnect(controllers) }
    }

    func matching(_ remote: RemoteNamespace) throws -> [FabricsController] {
        let host = FabricsHost()
        let spec = try Self.connectSpec(remote)
        let hostNQN = spec.hostNQN ?? host.defaultHostNQN()
        return host.controllers().filter { host.matches($0, spec, hostNQN: hostNQN) }
    }
}
