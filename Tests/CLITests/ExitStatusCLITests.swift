import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

/// The exit status follows the error's code alone (usage 2, other failures 1), and
/// `--json` carries the code and the field as the flag.
@Suite struct ExitStatusCLITests {
    /// Was exit 1 (realpath failed) while a SOURCE that is a file was exit 2: both are a bad argument.
    @Test func aFuseSourceThatDoesNotExistIsAUsageError() throws {
        let mountpoint = try makeTemporaryDirectory("cli-exit", in: "/var/tmp")
        defer { try? FileManager.default.removeItem(atPath: mountpoint) }
        let result = try CLI.run([
            "fuse", "mount", "/nonexistent/cachectl-source", mountpoint, "--pool", "16M", "--check", "--json",
        ])
        #expect(result.status == 2, "\(result.stdout) \(result.stderr)")
        let json = try CLI.json(result)
        let error = try #require(json["error"] as? [String: Any])
        #expect(error["code"] as? String == "usage")
        #expect(error["errno"] as? String == "ENOENT")
        #expect((json["msg"] as? String)?.contains("SOURCE must be an existing directory") == true)
    }

    @Test func aTierValueOutOfRangeNamesItsFlag() throws {
        let dir = "/var/tmp/cachectl-cli-exit-tier-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run([
            "tier", "create", "t", "--type", "tmpfs", "--size", "1M", "--state", dir + "/tiers.json", "--check",
            "--json",
        ])
        #expect(result.status == 2, "\(result.stdout) \(result.stderr)")
        let json = try CLI.json(result)
        let error = try #require(json["error"] as? [String: Any])
        #expect(error["code"] as? String == "usage")
        #expect(error["field"] as? String == "--size")
        #expect((json["msg"] as? String)?.hasPrefix("--size: tier size 1.00 MiB is too small") == true)
        #expect(result.stderr.contains("cachectl: error: --size: tier size 1.00 MiB is too small"))
    }

    @Test func aMissingPathIsAFailureNotAUsageError() throws {
        let result = try CLI.run(["nvmet", "restore", "/nonexistent/cachectl-nvmet.json", "--check", "--json"])
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        let error = try #require(try CLI.json(result)["error"] as? [String: Any])
        #expect(error["code"] as? String == "not_found")
    }
}
