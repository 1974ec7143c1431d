import CachectlSystem
import Foundation
import Testing

@testable import CachectlTiers

@Suite("nvmeof tiers")
struct NVMeOFTierTests {
    @Test("an nvmeof tier needs a /dev path; other tiers take none")
    func specValidation() throws {
        try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20), device: "/dev/nvme1n1").validate()
        #expect(TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20), device: "/dev/nvme1n1").filesystem == .ext4)
        #expect(TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20)).rank == 30)
        #expect { try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20)).validate() } throws: { ($0 as? CachectlError)?.code == .usage }
        #expect {
            try TierSpec(name: "remote", type: .nvmeof, size: ByteSize(256 << 20), device: "nvme1n1").validate()
        } throws: { ($0 as? CachectlError)?.code == .usage }
        #expect(TierSpec(name: "fast", type: .tmpfs, size: ByteSize(256 << 20), device: "/dev/nvme1n1").device == nil)
    }

    @Test("devices that are not fabrics namespaces are refused before mkfs", arguments: ["/dev/null", "/dev/does-not-exist"])
    func refusesOtherDevices(device: String) {
        #expect(throws: CachectlError.self) { try RAMTiers.checkFabricsNamespace(device, roots: .system) }
    }

    @Test("state files written before nvmeof existed still load")
    func oldStateLoads() throws {
        let json = #"{"spec":{"name":"fast","type":"tmpfs","size":16777216,"path":"/run/cachectl/tiers/fast","rank":10},"created_path":true}"#
        let record = try StateJSON.decode(TierRecord.self, from: Array(json.utf8))
        #expect(record.spec.device == nil && record.spec.type == .tmpfs)
    }
}
