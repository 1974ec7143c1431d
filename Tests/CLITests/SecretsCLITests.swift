import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

/// The built binary, pointed at a fixture fstab and mountinfo holding CIFS
/// passwords: no output of any command (text, --json, --diff, metrics,
/// stderr) may contain one. The fixtures are bind-mounted over /etc/fstab and
/// over the process's own /proc/PID/mountinfo in a private mount namespace
/// (`exec` keeps the PID, so /proc/self/mountinfo is the fixture), which
/// leaves the machine's own files alone.
@Suite(.enabled(if: Privileges.isRoot, "needs root for a private mount namespace"))
struct SecretsCLITests {
    static let secrets = ["Hunter2Pw", "S3cretPw1", "TailPart9", "Rot8Pw2", "PassAlias3", "Quoted,Pw4", "Quoted"]

    let dir: String
    let listener: Listener

    init() throws {
        dir = try makeTemporaryDirectory("cli-secrets")
        listener = try Listener()
        let fstab = """
            # fstab with secrets
            UUID=0a1b2c3d   /\t\text4   errors=remount-ro 0 1
            //127.0.0.1/a  /mnt/h1-a\tcifs  username=alice%Hunter2Pw,vers=3.0   0 0
            //127.0.0.1/b /mnt/h1-b cifs password=S3cretPw1,,TailPart9,password2=Rot8Pw2 0 0
            127.0.0.1:/models\t/mnt/h1-models   nfs4\tvers=4.2,port=\(listener.port)\t0   0
            //127.0.0.1/c   /mnt/h1-c   cifs   PASS=PassAlias3,credentials=/etc/x   0 0
            //127.0.0.1/d /mnt/h1-d cifs password="Quoted,Pw4",vers=3 0 0

            """
        let mountinfo = """
            29 1 0:24 / / rw,relatime - ext4 /dev/vda1 rw
            40 29 0:40 / /mnt/h1-a rw,relatime - cifs //127.0.0.1/a rw,vers=3.0,username=alice%Hunter2Pw
            41 29 0:41 / /mnt/h1-b rw,relatime - cifs //127.0.0.1/b rw,password=S3cretPw1,,TailPart9,password2=Rot8Pw2
            42 29 0:42 / /mnt/h1-models rw,relatime - nfs4 127.0.0.1:/models rw,vers=4.2,port=\(listener.port)
            43 29 0:43 / /mnt/h1-c rw,relatime - cifs //127.0.0.1/c rw,pass=PassAlias3

            """
        try fstab.write(toFile: dir + "/fstab", atomically: false, encoding: .utf8)
        try mountinfo.write(toFile: dir + "/mountinfo", atomically: false, encoding: .utf8)
        try """
        shares:
          - mountpoint: /mnt/h1-models

        """.write(toFile: dir + "/cachectl.yaml", atomically: false, encoding: .utf8)
    }

    /// Runs cachectl with the fixtures in place of /etc/fstab and /proc/self/mountinfo.
    func run(_ arguments: [String]) throws -> ExternalCommand.Result {
        let script = #"mount --bind "$1" /etc/fstab && mount --bind "$2" /proc/$$/mountinfo && shift 2 && exec "$@""#
        return try ExternalCommand(
            [
                "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dir + "/fstab",
                dir + "/mountinfo", CLI.binary,
            ]
                + arguments
        ).run()
    }

    func expectClean(
        _ result: ExternalCommand.Result, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for secret in Self.secrets {
            #expect(
                !result.stdout.contains(secret), "\(what) stdout leaks \(secret): \(result.stdout)",
                sourceLocation: sourceLocation)
            #expect(
                !result.stderr.contains(secret), "\(what) stderr leaks \(secret): \(result.stderr)",
                sourceLocation: sourceLocation)
        }
    }

    @Test func noCommandPrintsAPassword() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = ["--state", dir + "/tiers.json", "--warm-state", dir + "/warm.json"]

        let mountsJSON = try run(["mounts", "--json"])
        #expect(mountsJSON.status == 0, "\(mountsJSON.stderr)")
        #expect(mountsJSON.stdout.contains("/mnt/h1-b"))  // the fixture is what it read
        #expect(mountsJSON.stdout.contains("password=***"))
        expectClean(mountsJSON, "mounts --json")
        expectClean(try run(["mounts"]), "mounts")

        let statusJSON = try run(["status", "--json", "--prometheus", dir + "/cachectl.prom"] + state)
        #expect(statusJSON.stdout.contains("/mnt/h1-a"), "\(statusJSON.stderr)")
        expectClean(statusJSON, "status --json")
        let metrics = try String(contentsOfFile: dir + "/cachectl.prom", encoding: .utf8)
        #expect(metrics.contains("/mnt/h1-a"))
        for secret in Self.secrets { #expect(!metrics.contains(secret), "metrics leak \(secret)") }
        expectClean(try run(["status"] + state), "status")

        // fsc enable --check --diff: the diff is the one entry, and no secret.
        let fsc = try run(["fsc", "enable", "--check", "--diff", "--json", "/mnt/h1-models"])
        expectClean(fsc, "fsc enable --check --diff --json")
        let json = try CLI.json(fsc)
        #expect(json["failed"] as? Bool == false, "\(fsc.stdout) \(fsc.stderr)")
        let diff = try #require(((json["mounts"] as? [[String: Any]])?.first?["fstab_diff"]) as? String)
        let changed = diff.split(separator: "\n").filter {
            ($0.hasPrefix("-") || $0.hasPrefix("+")) && !$0.hasPrefix("---") && !$0.hasPrefix("+++")
        }
        #expect(changed.count == 2 && changed.allSatisfy { $0.contains("/mnt/h1-models") }, "\(diff)")
        #expect(diff.split(separator: "\n").allSatisfy { !$0.hasPrefix(" ") }, "context lines in \(diff)")
        expectClean(try run(["fsc", "enable", "--check", "--diff", "/mnt/h1-models"]), "fsc enable --check --diff")

        // A CIFS entry with username=u%p is refused without echoing it.
        let refused = try run(["fsc", "enable", "--check", "--json", "/mnt/h1-a"])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("holds a password"))
        expectClean(refused, "fsc enable on a CIFS entry with a password")

        // plan/apply --check --diff: the same diff, what the Ansible module returns.
        let apply = try run(["apply", "--check", "--diff", "--json", "-f", dir + "/cachectl.yaml"] + state)
        #expect(apply.stdout.contains("/mnt/h1-models"), "\(apply.stdout) \(apply.stderr)")
        #expect(apply.stdout.contains("fsc"))
        expectClean(apply, "apply --check --diff --json")
        let plan = try run(["plan", "--diff", "-f", dir + "/cachectl.yaml"] + state)
        #expect(plan.stdout.contains("/mnt/h1-models"), "\(plan.stdout) \(plan.stderr)")
        expectClean(plan, "plan --diff")
        if ProcessInfo.processInfo.environment["CACHECTL_TEST_SHOW"] != nil {
            print(mountsJSON.stdout, fsc.stdout, apply.stdout, plan.stdout, refused.stdout, separator: "\n")
        }
    }
}

/// A TCP socket listening on 127.0.0.1 (an ephemeral port), so cachectl's server probe succeeds.
final class Listener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw CachectlError("listen", errno: errno)
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }
}
