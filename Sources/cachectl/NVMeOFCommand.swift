import ArgumentParser
import CachectlNVMeOF
import CachectlPlan
import CachectlSystem
import CachectlTiers
import FoundationEssentials
import Glibc

private func stepsText(_ head: String, _ steps: [String]) -> String {
    ([head] + steps.map { "  " + $0 }).joined(separator: "\n")
}

/// Transport, address and port as every fabrics command takes them.
struct FabricsAddressOptions: ParsableArguments {
    @Option(help: "tcp, rdma or loop.") var transport: FabricsTransport = .tcp
    @Option(help: "IP address (IPv4 or IPv6) of the target port; not for loop.") var addr: String?
    @Option(help: "Service port (default 4420 for tcp and rdma; not for loop).") var port: Int?

    var address: FabricsAddress {
        FabricsAddress(
            transport: transport, address: addr,
            port: port ?? (transport.needsAddress ? FabricsTransport.defaultServicePort : nil))
    }
}

extension FabricsTransport: ExpressibleByArgument {}

struct Nvmet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvmet",
        abstract: "Export RAM over NVMe-over-Fabrics (nvmet) and connect to it as a remote tier.",
        discussion: """
            Target side (the machine lending RAM): `export` makes a RAM-backed namespace (a \
            sparse file on its own tmpfs, read with buffered_io), a subsystem \
            nqn.2014-08.org.cachectl:NAME, a port, and the link between them, all in configfs \
            (/sys/kernel/config/nvmet). Only the hosts you name may connect unless you say \
            --allow-any-host. `save`/`restore` read and write nvmetcli's JSON.

            Host side (the machine using it): `connect` attaches the namespace as /dev/nvmeXnY, \
            `cachectl tier create NAME --type nvmeof --device /dev/nvmeXnY` puts a filesystem on \
            it for promote/demote, and `disconnect` demotes those models, removes the tier and \
            disconnects.

            Examples:
              cachectl nvmet export lend --size 32G --addr 10.0.0.5 --allow-host nqn.2014-08.org.nvmexpress:uuid:...
              cachectl nvmet list
              cachectl nvmet connect --addr 10.0.0.5 --nqn nqn.2014-08.org.cachectl:lend
              cachectl tier create remote --type nvmeof --device /dev/nvme1n1
              cachectl nvmet disconnect nqn.2014-08.org.cachectl:lend
              cachectl nvmet unexport lend
            """,
        subcommands: [Export.self, List.self, Unexport.self, Save.self, Restore.self, Connect.self, Disconnect.self],
        defaultSubcommand: List.self
    )

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Export RAM as an NVMe-oF namespace (idempotent).",
            discussion: """
                Steps, each only when missing: load nvmet and the transport module; mount a tmpfs \
                of SIZE on /run/cachectl/nvmet/NAME and make a sparse file there (RAM is used \
                only as the host writes, and given back when it discards); create the host \
                entries, the subsystem nqn.2014-08.org.cachectl:NAME with allow_any_host 0 \
                (or 1 with --allow-any-host), its allowed hosts, namespace 1 on the file \
                (buffered_io, enabled), the port (one with the same address is shared), and \
                last the port→subsystem link that makes it reachable. A failed step undoes \
                the ones before it. The size of an existing export cannot change: unexport first.

                Examples:
                  cachectl nvmet export lend --size 32G --addr 10.0.0.5 --allow-host nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427
                  cachectl nvmet export lab --size 4G --addr 127.0.0.1 --port 4420 --allow-any-host --check
                """)

        @Argument(help: "Export name: a-z, 0-9, - and _.") var name: String
        @Option(help: "RAM to lend: 32G, 512M (K/M/G/T are 1024-based).") var size: String
        @OptionGroup var address: FabricsAddressOptions
        @Option(name: .customLong("allow-host"), help: "A host NQN that may connect (repeat for more).") var allowHosts:
            [String] = []
        @Flag(help: "Let any host connect (no access control).") var allowAnyHost = false
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            guard let bytes = ByteSize(parsing: size) else {
                throw ValidationError("not a size: \(size) (examples: 32G, 512M)")
            }
            let spec = ExportSpec(
                name: name, size: bytes, address: address.address, allowedHosts: allowHosts, allowAnyHost: allowAnyHost)
            let change = try NVMeTarget().export(spec, check: check)
            let msg = "export \(name) (\(spec.nqn)): \(change.action)"
            try CommandOutput.finish(output, changed: change.changed, failed: false, msg: msg, data: change) {
                stepsText(msg, change.steps)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract:
                "Show the target's subsystems, namespaces (backing, size, RAM in use), hosts and ports, and this host's fabrics connections."
        )

        @OptionGroup var output: OutputOptions

        struct Data: Encodable {
            var subsystems: [ExportStatus]
            var connections: [FabricsController]
        }

        func run() throws {
            output.bootstrap()
            let data = Data(subsystems: try NVMeTarget().list(), connections: FabricsHost().controllers())
            let msg = "\(data.subsystems.count) subsystem(s), \(data.connections.count) connection(s)"
            try CommandOutput.finish(output, changed: false, failed: false, msg: msg, data: data) {
                var rows = [["SUBSYSTEM", "NSID", "BACKING", "SIZE", "IN RAM", "ENABLED", "HOSTS", "PORTS"]]
                for s in data.subsystems {
                    let hosts =
                        s.allowAnyHost ? "any" : s.allowedHosts.isEmpty ? "none" : s.allowedHosts.joined(separator: ",")
                    let ports = s.ports.map {
                        "\($0.portid):\($0.transport ?? "?")://\($0.address ?? "")\($0.port.map { ":" + $0 } ?? "")"
                    }
                    .joined(separator: ",")
                    let namespaces = s.namespaces.isEmpty ? [nil] : s.namespaces.map { Optional($0) }
                    for ns in namespaces {
                        rows.append([
                            s.nqn, ns.map { String($0.nsid) } ?? "-",
                            ns.map { "\($0.backing) \($0.path ?? "-")" } ?? "-",
                            ns?.size.map(ByteSize.format) ?? "-", ns?.residentBytes.map(ByteSize.format) ?? "-",
                            ns.map { $0.enabled ? "yes" : "no" } ?? "-", hosts, ports.isEmpty ? "-" : ports,
                        ])
                    }
                }
                var text = data.subsystems.isEmpty ? "no nvmet subsystems" : formatTable(rows)
                if !data.connections.isEmpty {
                    var c = [["CONTROLLER", "SUBSYSTEM", "TRANSPORT", "ADDRESS", "STATE", "DEVICES"]]
                    for x in data.connections {
                        c.append([
                            x.name, x.subsystemNQN, x.transport, x.address, x.state, x.devices.joined(separator: ","),
                        ])
                    }
                    text += "\n\n" + formatTable(c)
                }
                return text
            }
        }
    }

    struct Unexport: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unexport",
            abstract: "Remove an export and free its RAM (idempotent).",
            discussion: """
                In the order configfs allows: unlink the port→subsystem link (removing the port \
                when nothing else uses it), disable and remove the namespace, unlink allowed \
                hosts, remove the subsystem and host entries no other subsystem allows, then \
                unmount the backing tmpfs. Connected hosts lose the namespace: disconnect them first.

                Example: cachectl nvmet unexport lend
                """)

        @Argument(help: "Export name.") var name: String
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            let change = try NVMeTarget().unexport(name, check: check)
            let msg = "export \(name): \(change.action)"
            try CommandOutput.finish(output, changed: change.changed, failed: false, msg: msg, data: change) {
                stepsText(msg, change.steps)
            }
        }
    }

    struct Save: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "save",
            abstract: "Write the target's configuration as nvmetcli's JSON (what `nvmetcli save` writes).",
            discussion: """
                The file is byte-for-byte what nvmetcli would save from the same configfs: every \
                writable attribute by group, sorted keys, two-space indent. It is replaced \
                atomically; an unchanged file is not rewritten.

                Example: cachectl nvmet save /etc/nvmet/config.json
                """)

        @Argument(help: "File to write (default /etc/nvmet/config.json, nvmetcli's).") var file: String =
            "/etc/nvmet/config.json"
        @Flag(help: "Change nothing; report whether the file would change.") var check = false
        @OptionGroup var output: OutputOptions

        struct Data: Encodable {
            var file: String
            var subsystems: Int
            var ports: Int
            var hosts: Int
        }

        func run() throws {
            output.bootstrap()
            let config = try NVMeTarget().current()
            let text = config.json.pythonText
            let path = Path.absolute(file)
            let changed: Bool
            if check {
                changed = (try? AtomicFile.readText(path)) != text
            } else {
                try FileManager.default.createDirectory(
                    atPath: Path.directory(of: path), withIntermediateDirectories: true)
                changed = try AtomicFile.write(text, to: path, mode: 0o600)
            }
            let msg = "\(path): \(changed ? (check ? "would write" : "written") : "unchanged")"
            try CommandOutput.finish(
                output, changed: changed, failed: false, msg: msg,
                data: Data(
                    file: path, subsystems: config.subsystems.count, ports: config.ports.count,
                    hosts: config.hosts.count)
            ) { msg }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restore",
            abstract: "Make the target match an nvmetcli JSON file (idempotent).",
            discussion: """
                Creates hosts, subsystems (namespaces, allowed hosts, attributes) and ports \
                (attributes, ANA groups, referrals, links) that are missing and writes only \
                attributes that differ, so a second run changes nothing. Objects not in the file \
                are kept unless --replace (nvmetcli's restore clears everything first). A \
                namespace on a regular tmpfs file gets buffered_io, and one on a cachectl RAM \
                backing path (/run/cachectl/nvmet/NAME/ram-BYTES.img) gets its tmpfs and file \
                made again, so a saved export comes back after a reboot (empty: it is RAM).

                Example: cachectl nvmet restore /etc/nvmet/config.json --check
                """)

        @Argument(help: "nvmetcli JSON file.") var file: String = "/etc/nvmet/config.json"
        @Flag(help: "Remove what the file does not list.") var replace = false
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            let bytes = try AtomicFile.readBytes(Path.absolute(file))
            let change: TargetChange
            do {
                change = try NVMeTarget().restore(try NvmetConfig(jsonBytes: bytes), replace: replace, check: check)
            } catch let failure as ChangeFailure {
                // changed says truthfully whether the rollback left anything changed.
                let msg = "restore \(file): \(failure)"
                StandardStream.error.write("cachectl: error: \(msg)\n")
                let data = TargetChange(changed: failure.changed, action: "failed", steps: failure.steps, export: nil)
                try CommandOutput.finish(output, changed: failure.changed, failed: true, msg: msg, data: data) { "" }
                return
            }
            let msg = "restore \(file): \(change.action)"
            try CommandOutput.finish(output, changed: change.changed, failed: false, msg: msg, data: change) {
                stepsText(msg, change.steps)
            }
        }
    }

    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "connect",
            abstract: "Connect to an NVMe-oF subsystem and print its block device (idempotent).",
            discussion: """
                Writes the option string (transport, traddr, trsvcid, nqn, hostnqn) to \
                /dev/nvme-fabrics, reads back the controller instance, and waits for the \
                namespace's /dev/nvmeXnY. An existing live connection is reused. The host NQN is \
                --hostnqn, else /etc/nvme/hostnqn, else the kernel's default; the target must \
                list it (or allow any host), or the connection is refused.

                Example: cachectl nvmet connect --addr 10.0.0.5 --nqn nqn.2014-08.org.cachectl:lend
                """)

        @OptionGroup var address: FabricsAddressOptions
        @Option(help: "Subsystem NQN to connect to.") var nqn: String
        @Option(help: "This host's NQN (default /etc/nvme/hostnqn).") var hostnqn: String?
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            let spec = ConnectSpec(address: address.address, nqn: nqn, hostNQN: hostnqn)
            let change = try FabricsHost().connect(spec, check: check)
            let msg = "\(nqn): \(change.action)" + (change.device.map { " as \($0)" } ?? "")
            try CommandOutput.finish(output, changed: change.changed, failed: false, msg: msg, data: change) { msg }
        }
    }

    struct Disconnect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "disconnect",
            abstract: "Disconnect from a subsystem; tiers on it are demoted and removed first.",
            discussion: """
                TARGET is a subsystem NQN, a controller (nvme3) or a block device (/dev/nvme3n1). \
                For every nvmeof tier on those namespaces, its models go back to cold storage \
                and the tier is unmounted (as `tier destroy --demote`); then each controller's \
                delete_controller is written and cachectl waits for the devices to go. \
                Nothing connected changes nothing.

                Example: cachectl nvmet disconnect nqn.2014-08.org.cachectl:lend
                """)

        @Argument(help: "Subsystem NQN, controller name or block device.") var target: String
        @Flag(help: "Detach a busy tier mount lazily (MNT_DETACH).") var force = false
        @Flag(help: "Change nothing; report what would change.") var check = false
        @OptionGroup var state: TierStateOptions
        @OptionGroup var output: OutputOptions

        struct Data: Encodable {
            var controllers: [FabricsController]
            var tiers: [TierChange]
        }

        func run() throws {
            output.bootstrap()
            let host = FabricsHost()
            let controllers = host.resolve(target)
            guard !controllers.isEmpty else {
                try CommandOutput.finish(
                    output, changed: false, failed: false, msg: "\(target): not connected",
                    data: Data(controllers: [], tiers: [])
                ) {
                    "\(target): not connected"
                }
                return
            }
            let tiers = state.tiers
            let names = try tiers.tiers(onDevices: controllers.flatMap(\.devices))
            let changes = try names.map { try tiers.destroyTier($0, demote: true, force: force, check: check) }
            try host.disconnect(controllers, check: check)
            let msg =
                "\(target): \(check ? "would disconnect" : "disconnected") \(controllers.map(\.name).joined(separator: ", "))"
            try CommandOutput.finish(
                output, changed: true, failed: false, msg: msg, data: Data(controllers: controllers, tiers: changes)
            ) {
                var lines = [msg]
                for change in changes {
                    lines.append("  tier \(change.tier?.name ?? "?"): \(change.action)")
                    lines += change.steps.map { "    " + $0 }
                }
                return lines.joined(separator: "\n")
            }
        }
    }
}

/// `tier create --type nvmeof`: the device directly, the export to connect to
/// (--nqn with --addr, or with --transport loop), or a connected subsystem (--nqn).
struct NVMeOFTierOptions: ParsableArguments {
    @Option(help: "nvmeof: the namespace's block device (/dev/nvme1n1).") var device: String?
    @Option(
        help:
            "nvmeof: subsystem NQN; with --addr (or --transport loop) the tier connects to it itself, else its connected namespace is used."
    ) var nqn: String?
    @Option(name: .customLong("addr"), help: "nvmeof with --nqn: target IP address to connect to.") var addr: String?
    @Option(name: .customLong("port"), help: "nvmeof with --nqn: target service port (default 4420).") var port: Int?
    @Option(name: .customLong("transport"), help: "nvmeof with --nqn: tcp (default), rdma or loop.") var transport:
        FabricsTransport?
    @Option(help: "nvmeof with --nqn: this host's NQN.") var hostnqn: String?

    /// The export the tier connects to itself, when --nqn names one to reach.
    var remote: RemoteNamespace? {
        guard let nqn, addr != nil || transport == .loop else { return nil }
        let kind = transport ?? .tcp
        return RemoteNamespace(
            nqn: nqn, transport: kind.rawValue, address: addr,
            port: port ?? (kind.needsAddress ? FabricsTransport.defaultServicePort : nil), hostNQN: hostnqn)
    }

    /// The block device to put the tier on (connecting to `remote` first); nil
    /// when a check finds it not connected yet.
    func resolveDevice(check: Bool) throws -> String? {
        if let device { return Path.absolute(device) }
        guard let nqn else { return nil }
        let host = FabricsHost()
        if let remote {
            let spec = try FabricsTierLink.connectSpec(remote)
            if let found = host.connect(existing: spec) { return found }
            if check { return nil }
            return try FabricsTierLink().connect(remote)
        }
        guard let device = host.resolve(nqn).first(where: { $0.state == "live" })?.devices.first else {
            throw ValidationError("\(nqn) is not connected; give --addr to connect, or run: cachectl nvmet connect ...")
        }
        return device
    }
}
