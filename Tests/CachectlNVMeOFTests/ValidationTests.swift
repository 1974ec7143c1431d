import CachectlSystem
import Testing

@testable import CachectlNVMeOF

@Suite("validation")
struct ValidationTests {
    @Test(
        "well-formed NQNs pass",
        arguments: [
            "nqn.2014-08.org.cachectl:lend",
            "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "nqn.2016-06.io.spdk:cnode1",
        ])
    func goodNQN(nqn: String) throws {
        try NQN.validate(nqn)
    }

    @Test(
        "malformed NQNs are refused",
        arguments: [
            "", "lend", "nqn.14-08.org.x:y", "nqn.2014-13.org.x:y", "nqn.2014-08.org.x", "nqn.2014-08.org.x:",
            "nqn.2014-08..x:y", "nqn.2014-08.org.x:a,b", "nqn.2014-08.org.x:a/b", "nqn.2014-08.org.x:a b",
            "nqn.2014-08.org.x:" + String(repeating: "a", count: 210),
        ])
    func badNQN(nqn: String) {
        #expect { try NQN.validate(nqn) } throws: { ($0 as? CachectlError)?.code == .usage }
    }

    @Test("plain subsystem names from nvmetcli configs are accepted for restore, unsafe ones are not")
    func relaxedNames() throws {
        try NQN.validateName("testnqn")
        #expect { try NQN.validateName("..") } throws: { ($0 as? CachectlError)?.code == .usage }
        #expect { try NQN.validateName("a/b") } throws: { ($0 as? CachectlError)?.code == .usage }
    }

    @Test("ports must be 1-65535", arguments: [0, -1, 65536])
    func badPort(port: Int) {
        #expect {
            try FabricsAddress(transport: .tcp, address: "127.0.0.1", port: port).validate()
        } throws: { ($0 as? CachectlError)?.code == .usage }
    }

    @Test(
        "addresses must be IP literals", arguments: ["", "localhost", "10.0.0", "1.2.3.4.5", "::g", "10.0.0.1,nqn=x"])
    func badAddress(address: String) {
        #expect {
            try FabricsAddress(transport: .tcp, address: address, port: 4420).validate()
        } throws: { ($0 as? CachectlError)?.code == .usage }
    }

    @Test("IPv4 and IPv6 addresses pass and pick the family")
    func goodAddresses() throws {
        let v4 = FabricsAddress(transport: .tcp, address: "192.168.1.7", port: 4420)
        let v6 = FabricsAddress(transport: .rdma, address: "fe80::1", port: 4420)
        try v4.validate()
        try v6.validate()
        #expect(v4.family == "ipv4" && v6.family == "ipv6")
        #expect { try FabricsAddress(transport: .loop, address: "127.0.0.1", port: nil).validate() } throws: {
            ($0 as? CachectlError)?.code == .usage
        }
        try FabricsAddress(transport: .loop, address: nil, port: nil).validate()
    }

    @Test("an export names its hosts or allows any host explicitly, never both")
    func exportAccess() throws {
        let address = FabricsAddress(transport: .tcp, address: "127.0.0.1", port: 4420)
        let host = "nqn.2014-08.org.cachectl:h"
        try ExportSpec(name: "lend", size: ByteSize(1 << 30), address: address, allowedHosts: [host]).validate()
        try ExportSpec(name: "lend", size: ByteSize(1 << 30), address: address, allowAnyHost: true).validate()
        #expect { try ExportSpec(name: "lend", size: ByteSize(1 << 30), address: address).validate() } throws: {
            ($0 as? CachectlError)?.code == .usage
        }
        #expect {
            try ExportSpec(
                name: "lend", size: ByteSize(1 << 30), address: address, allowedHosts: [host], allowAnyHost: true
            ).validate()
        } throws: { ($0 as? CachectlError)?.code == .usage }
        #expect {
            try ExportSpec(name: "lend", size: ByteSize(1 << 30), address: address, allowedHosts: [host, host])
                .validate()
        } throws: { ($0 as? CachectlError)?.code == .usage }
    }

    @Test(
        "export sizes and names are checked",
        arguments: [
            ("lend", UInt64(1 << 20)), ("lend", UInt64(64 << 20) + 512), ("Lend", UInt64(64 << 20)),
            ("-x", UInt64(64 << 20)), ("a/b", UInt64(64 << 20)),
        ])
    func badExport(name: String, size: UInt64) {
        #expect {
            try ExportSpec(
                name: name, size: ByteSize(size),
                address: FabricsAddress(transport: .tcp, address: "127.0.0.1", port: 4420), allowAnyHost: true
            ).validate()
        } throws: { ($0 as? CachectlError)?.code == .usage }
    }

    @Test("restore refuses inconsistent files before touching configfs")
    func restoreValidation() throws {
        func config(_ text: String) throws -> NvmetConfig { try NvmetConfig(jsonBytes: Array(text.utf8)) }
        let dangling = try config(
            #"{"ports":[{"portid":1,"addr":{"trtype":"tcp","traddr":"127.0.0.1"},"subsystems":["nope"]}]}"#)
        #expect { try NVMeTarget.validate(dangling) } throws: { ($0 as? CachectlError)?.code == .usage }
        let twice = try config(#"{"subsystems":[{"nqn":"a"},{"nqn":"a"}]}"#)
        #expect { try NVMeTarget.validate(twice) } throws: { ($0 as? CachectlError)?.code == .usage }
        let passthru = try config(#"{"subsystems":[{"nqn":"a","passthru":[{"device":{"path":"/dev/nvme0"}}]}]}"#)
        #expect { try NVMeTarget.validate(passthru) } throws: { ($0 as? CachectlError)?.code == .usage }
        let relative = try config(
            #"{"subsystems":[{"nqn":"a","namespaces":[{"nsid":1,"device":{"path":"disk.img"}}]}]}"#)
        #expect { try NVMeTarget.validate(relative) } throws: { ($0 as? CachectlError)?.code == .usage }
        let badPort = try config(#"{"ports":[{"portid":70000}]}"#)
        #expect { try NVMeTarget.validate(badPort) } throws: { ($0 as? CachectlError)?.code == .usage }
    }

    @Test("the fabrics option string carries exactly the given fields")
    func options() {
        let spec = ConnectSpec(
            address: FabricsAddress(transport: .tcp, address: "127.0.0.1", port: 4420),
            nqn: "nqn.2014-08.org.cachectl:lend")
        #expect(
            spec.options(hostNQN: "nqn.2014-08.org.cachectl:h")
                == "transport=tcp,traddr=127.0.0.1,trsvcid=4420,nqn=nqn.2014-08.org.cachectl:lend,hostnqn=nqn.2014-08.org.cachectl:h"
        )
        let loop = ConnectSpec(address: FabricsAddress(transport: .loop, address: nil, port: nil), nqn: "testnqn")
        #expect(loop.options(hostNQN: nil) == "transport=loop,nqn=testnqn")
    }

    @Test("a tier's connection says how long to wait for a target that went away")
    func lossTimeouts() throws {
        let spec = ConnectSpec(
            address: FabricsAddress(transport: .rdma, address: "10.77.0.1", port: 4420),
            nqn: "nqn.2014-08.org.cachectl:lend",
            timeouts: .tier)
        try spec.validate()
        #expect(
            spec.options(hostNQN: nil)
                == "transport=rdma,traddr=10.77.0.1,trsvcid=4420,nqn=nqn.2014-08.org.cachectl:lend,reconnect_delay=2,fast_io_fail_tmo=5,ctrl_loss_tmo=30"
        )
        let loop = ConnectSpec(
            address: FabricsAddress(transport: .loop, address: nil, port: nil), nqn: "testnqn", timeouts: .tier)
        #expect(loop.options(hostNQN: nil) == "transport=loop,nqn=testnqn")  // loop refuses them (EINVAL)
        for bad in [
            LossTimeouts(reconnectDelay: 0, fastIOFail: 5, controllerLoss: 30),
            LossTimeouts(reconnectDelay: 2, fastIOFail: 40, controllerLoss: 30),
            LossTimeouts(reconnectDelay: 10, fastIOFail: 5, controllerLoss: 5),
        ] {
            var s = spec
            s.timeouts = bad
            #expect("\(bad)") { try s.validate() } throws: {
                ($0 as? CachectlError)?.field == ["timeouts"] && ($0 as? CachectlError)?.code == .usage
            }
        }
    }

    @Test("each host NQN gets its own host ID (6.12 refuses one ID under two NQNs)")
    func hostIDs() {
        let uuid = "nqn.2014-08.org.nvmexpress:uuid:1B4E28BA-2FA1-11D2-883F-0016D3CCA427"
        #expect(ConnectSpec.hostID(for: uuid, etc: "/nonexistent") == "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
        let a = ConnectSpec.hostID(for: "nqn.2014-08.org.cachectl:host-allowed", etc: "/nonexistent")
        let b = ConnectSpec.hostID(for: "nqn.2014-08.org.cachectl:host-denied", etc: "/nonexistent")
        #expect(a != b)
        #expect(a == ConnectSpec.hostID(for: "nqn.2014-08.org.cachectl:host-allowed", etc: "/nonexistent"))
        #expect(a.count == 36 && a.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(Array(a)[14] == "8")  // version 8
        let spec = ConnectSpec(address: FabricsAddress(transport: .tcp, address: "127.0.0.1", port: 4420), nqn: "n")
        #expect(spec.options(hostNQN: "h", hostID: a).hasSuffix(",hostnqn=h,hostid=\(a)"))
    }

    @Test("an unused passthru group (every subsystem has one on 6.12) does not stop restore")
    func passthru() {
        let unused = NvmetJSON.array([
            .object(["device": .object(["path": .string("")]), "enable": .int(0), "io_timeout": .int(0)])
        ])
        let used = NvmetJSON.array([.object(["device": .object(["path": .string("/dev/nvme0")]), "enable": .int(1)])])
        #expect(!NVMeTarget.passthruInUse(unused))
        // What 6.12's configfs shows for it: device_path reads "(null)".
        let unset = NvmetJSON.array([
            .object(["device": .object(["path": .string("(null)")]), "enable": .int(0), "clear_ids": .int(1)])
        ])
        #expect(!NVMeTarget.passthruInUse(unset))
        #expect(!NVMeTarget.passthruInUse(nil))
        #expect(NVMeTarget.passthruInUse(used))
    }

    @Test("namespace device names map to their /dev head")
    func namespaceNames() {
        #expect(FabricsHost.parseNamespaceName("nvme0c0n1")! == (0, 1))
        #expect(FabricsHost.parseNamespaceName("nvme3n12")! == (3, 12))
        #expect(FabricsHost.parseNamespaceName("nvme3") == nil)
        #expect(FabricsHost.parseNamespaceName("nvme3n") == nil)
        #expect(FabricsHost.parseNamespaceName("power") == nil)
    }

    @Test("RAM backing paths carry their size")
    func backingPaths() {
        let root = "/run/cachectl/nvmet"
        #expect(
            RAMBacking.parse(root + "/lend/ram-268435456.img", backingRoot: root)
                == RAMBacking(backingRoot: root, name: "lend", size: 268_435_456))
        #expect(RAMBacking.parse(root + "/lend/other.img", backingRoot: root) == nil)
        #expect(RAMBacking.parse(root + "/a/b/ram-1.img", backingRoot: root) == nil)
        #expect(RAMBacking.parse("/dev/ram0", backingRoot: root) == nil)
    }
}
