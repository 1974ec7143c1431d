import CachectlSystem
import Foundation
import Testing

@testable import CachectlNVMeOF

func fixture(_ name: String) throws -> [UInt8] {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil))
    return Array(try Data(contentsOf: url))
}

@Suite("nvmetcli JSON")
struct NvmetJSONTests {
    @Test(
        "a real save loads and writes back byte for byte",
        arguments: ["nvmetcli-saved-6.1.json", "cachectl-saved-6.1.json"])
    func roundTrip(name: String) throws {
        let bytes = try fixture(name)
        let config = try NvmetConfig(jsonBytes: bytes)
        #expect(config.json.pythonText == String(decoding: bytes, as: UTF8.self))
    }

    @Test("cachectl's save of the guest's configfs equals nvmetcli's")
    func sameAsNvmetcli() throws {
        #expect(try fixture("cachectl-saved-6.1.json") == fixture("nvmetcli-saved-6.1.json"))
    }

    @Test("the fields cachectl uses are read from a real save")
    func fields() throws {
        let config = try NvmetConfig(jsonBytes: try fixture("nvmetcli-saved-6.1.json"))
        #expect(Set(config.hosts.map(\.nqn)) == ["nqn.2014-08.org.cachectl:host-a", "nqn.2014-08.org.cachectl:host-b"])
        let lend = try #require(config.subsystem("nqn.2014-08.org.cachectl:lend"))
        #expect(!lend.allowAnyHost)
        #expect(Set(lend.allowedHosts) == ["nqn.2014-08.org.cachectl:host-a", "nqn.2014-08.org.cachectl:host-b"])
        let ns = try #require(lend.namespaces.first)
        #expect(ns.nsid == 1 && ns.node.enable == 1 && ns.anaGroupID == 1)
        let backing = try #require(
            ns.devicePath.flatMap { RAMBacking.parse($0, backingRoot: NVMeTarget.defaultBackingRoot) })
        #expect(backing.size == 64 << 20)
        #expect(config.subsystem("nqn.2014-08.org.cachectl:open")?.allowAnyHost == true)
        let port = try #require(config.ports.first { $0.subsystems == ["nqn.2014-08.org.cachectl:lend"] })
        #expect(port.transport == "tcp" && port.address == "127.0.0.1" && port.serviceID == "4420")
        #expect(port.anaGroups?.first?.node.value("ana", "state") == "optimized")
        #expect(config.node.groups["discovery"] == [:])
        try NVMeTarget.validate(config)
    }

    /// nvmetcli before ANA and discovery_nqn (Python 2 wrote ", " before newlines):
    /// no ana group, no ana_groups, no discovery; keys it never wrote stay absent.
    @Test("an older nvmetcli file loads, and re-saving adds nothing")
    func olderLayout() throws {
        let text = """
            {
              "hosts": [], 
              "ports": [
                {
                  "addr": {"adrfam": "ipv4", "traddr": "10.0.0.5", "treq": "not specified", "trsvcid": "4420", "trtype": "rdma"}, 
                  "portid": 1, "referrals": [], "subsystems": ["testnqn"]
                }
              ], 
              "subsystems": [
                {
                  "allowed_hosts": [], "attr": {"allow_any_host": "1"}, 
                  "namespaces": [{"device": {"nguid": "ef90689c-6c46-d44c-89c1-4067801309a8", "path": "/dev/nvme0n1"}, "enable": 1, "nsid": 1}], 
                  "nqn": "testnqn"
                }
              ]
            }
            """
        let config = try NvmetConfig(jsonBytes: Array(text.utf8))
        #expect(config.ports[0].anaGroups == nil)
        #expect(config.subsystems[0].namespaces[0].anaGroupID == nil)
        let again = try NvmetConfig(jsonBytes: Array(config.json.pythonText.utf8))
        #expect(again == config)
        #expect(!config.json.pythonText.contains("ana"))
        try NVMeTarget.validate(config)
    }

    @Test("unknown keys survive a load and a save")
    func unknownKeys() throws {
        let text =
            #"{"hosts":[],"ports":[],"subsystems":[{"nqn":"s","attr":{},"namespaces":[],"allowed_hosts":[],"future":{"x":[1,true,null]}}]}"#
        let config = try NvmetConfig(jsonBytes: Array(text.utf8))
        #expect(config.subsystems[0].node.extra["future"] == .object(["x": .array([.int(1), .bool(true), .null])]))
        #expect(config.json.pythonText.contains("\"future\": {\n"))
    }

    @Test("strings are quoted as Python's json.dumps quotes them")
    func quoting() {
        #expect(NvmetJSON.quoted("a\"b\\c\nd/é€😀\u{1}") == #""a\"b\\c\nd/\u00e9\u20ac\ud83d\ude00\u0001""#)
        #expect(NvmetJSON.object([:]).pythonText == "{}\n")
        #expect(NvmetJSON.object(["b": .array([]), "a": .int(1)]).pythonText == "{\n  \"a\": 1,\n  \"b\": []\n}\n")
    }

    @Test(
        "files that are not nvmetcli's layout are refused with where",
        arguments: [
            (#"[]"#, "top level"),
            (#"{"subsystems":[{"attr":{}}]}"#, "subsystems[0].nqn"),
            (#"{"ports":[{"portid":"x"}]}"#, "ports[0].portid"),
            (#"{"subsystems":[{"nqn":"s","attr":{"allow_any_host":[1]}}]}"#, "subsystems[0].attr.allow_any_host"),
            (#"{"hosts":{}}"#, "hosts must be a list"),
            (#"{"#, "not JSON"),
        ])
    func badFiles(text: String, mentions: String) {
        #expect {
            _ = try NvmetConfig(jsonBytes: Array(text.utf8))
        } throws: { error in
            (error as? CachectlError).map { $0.code == .usage && $0.description.contains(mentions) } ?? false
        }
    }
}
