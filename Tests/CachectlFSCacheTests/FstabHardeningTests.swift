import CachectlSystem
import Foundation
import Glibc
import Testing

@testable import CachectlMount

/// Secrets a fixture holds; none may appear in any output.
let fixtureSecrets = ["Hunter2Pw", "S3cretPw1", "TailPart9", "Rot8Pw2", "PassAlias3", "Quoted,Pw4"]

/// An fstab with odd whitespace, tabs, comments and CIFS lines holding passwords
/// in every form mount.cifs(8) accepts.
let secretFstab = """
    # /etc/fstab with  odd   spacing\t and tabs
    UUID=0a1b2c3d-1111   /\t\t\text4   errors=remount-ro   0\t1

    //127.0.0.1/a  /mnt/h1-a\tcifs  username=alice%Hunter2Pw,vers=3.0   0 0
    \t//127.0.0.1/b /mnt/h1-b cifs password=S3cretPw1,,TailPart9,password2=Rot8Pw2,user=bob 0 0
    # a comment between the entries
    127.0.0.1:/models\t/mnt/h1-models   nfs4\tvers=4.2,_netdev\t0   0
    //127.0.0.1/c   /mnt/h1-c   cifs   PASS=PassAlias3,credentials=/etc/x   0 0
    //127.0.0.1/d /mnt/h1-d cifs password="Quoted,Pw4",vers=3 0 0
    tmpfs /mnt/h1-last tmpfs size=1m
    """

/// Live mounts matching `secretFstab`; the NFS and tmpfs mounts already have fsc in the superblock.
func secretMountinfo(fscOnModels: Bool = false) -> String {
    """
    29 1 0:24 / / rw,relatime - ext4 /dev/vda1 rw
    40 29 0:40 / /mnt/h1-a rw,relatime - cifs //127.0.0.1/a rw,vers=3.0,username=alice%Hunter2Pw
    41 29 0:41 / /mnt/h1-b rw,relatime - cifs //127.0.0.1/b rw,password=S3cretPw1,,TailPart9,password2=Rot8Pw2
    42 29 0:42 / /mnt/h1-models rw,relatime - nfs4 127.0.0.1:/models rw,vers=4.2\(fscOnModels ? ",fsc" : "")
    43 29 0:43 / /mnt/h1-c rw,relatime - cifs //127.0.0.1/c rw,pass=PassAlias3
    44 29 0:44 / /mnt/h1-last rw,relatime - tmpfs tmpfs rw,size=1024k,fsc

    """
}

func expectNoSecret(_ text: String?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let text else { return }
    for secret in fixtureSecrets + ["Quoted"] {
        #expect(!text.contains(secret), "\(what) leaks \(secret): \(text)", sourceLocation: sourceLocation)
    }
}

@Suite struct MountSecretsTests {
    @Test(arguments: [
        ("username=u,password=s3cret,vers=3", "username=u,password=***,vers=3"),
        ("pass=s3cret", "pass=***"),
        ("PASSWORD=s3cret,ro", "PASSWORD=***,ro"),
        ("password2=next,vers=3.1.1", "password2=***,vers=3.1.1"),
        ("username=alice%s3cret,vers=3", "username=alice%***,vers=3"),
        ("user=DOM/alice%s3cret", "user=DOM/alice%***"),
        ("password=a,,b,,c,ro", "password=***,ro"),
        ("password=\"a,b\",ro", "password=***,ro"),
        ("secret=AQB==,name=admin", "secret=***,name=admin"),
        ("credentials=/etc/password.cred,user=bob", "credentials=/etc/password.cred,user=bob"),
        ("//srv/x /mnt/x cifs rw,password=s3 0 0", "//srv/x /mnt/x cifs rw,password=*** 0 0"),
        ("-//srv/x\t/mnt/x\tcifs\tpassword=s3\t0 0", "-//srv/x\t/mnt/x\tcifs\tpassword=***\t0 0"),
        ("mount error: options: pass=s3 given", "mount error: options: pass=*** given"),
    ])
    func masksEverySecretForm(input: String, expected: String) {
        #expect(MountSecrets.redact(input) == expected)
        #expect(OptionString.redacted(input) == expected)
    }

    @Test func recognisesSecretsForRefusal() {
        #expect(MountSecrets.containsSecret("username=u%p"))
        #expect(MountSecrets.containsSecret("vers=3,password2=x"))
        #expect(!MountSecrets.containsSecret("username=u,credentials=/etc/c,vers=3"))
    }

    @Test func aWholeFstabLeavesNoSecret() {
        let redacted = MountSecrets.redact(secretFstab)
        expectNoSecret(redacted, "redacted fstab")
        #expect(redacted.contains("username=alice%***,vers=3.0"))
        #expect(redacted.contains("/mnt/h1-models   nfs4\tvers=4.2,_netdev\t0   0"))
    }
}

/// A fixture root: etc/fstab and proc/self/mountinfo.
struct FstabBed {
    let dir: String
    let roots: KernelRoots
    var fstab: String { dir + "/etc/fstab" }

    init(fstab text: String = secretFstab, mountinfo: String = secretMountinfo()) throws {
        dir = temporaryDirectory()
        roots = .fixture(dir)
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/proc/self", withIntermediateDirectories: true)
        try text.write(toFile: fstab, atomically: false, encoding: .utf8)
        try mountinfo.write(toFile: dir + "/proc/self/mountinfo", atomically: false, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }

    func lines() throws -> [String] {
        try String(contentsOfFile: fstab, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(
            String.init)
    }
}

@Suite struct FstabEditTests {
    @Test func addingFscChangesOnlyThatEntrysBytes() throws {
        let bed = try FstabBed()
        defer { bed.remove() }
        let before = try bed.lines()
        let fstab = try FstabFile(path: bed.fstab)
        let entry = try #require(fstab.entry(forTarget: "/mnt/h1-models"))
        #expect(fstab.setOptions(OptionString.setting(entry.options, "fsc"), forTarget: "/mnt/h1-models"))
        let diff = fstab.diff()
        #expect(try fstab.write())
        let after = try bed.lines()
        #expect(after.count == before.count)
        for (index, line) in before.enumerated() where !line.contains("/mnt/h1-models") {
            #expect(after[index] == line, "line \(index + 1) changed")
        }
        #expect(after.contains("127.0.0.1:/models\t/mnt/h1-models   nfs4\tvers=4.2,_netdev,fsc\t0   0"))
        // The diff: headers, one hunk, the entry out and in; no other line, no secret.
        let body = diff.split(separator: "\n").filter {
            !$0.hasPrefix("---") && !$0.hasPrefix("+++") && !$0.hasPrefix("@@")
        }
        #expect(
            body == [
                "-127.0.0.1:/models\t/mnt/h1-models   nfs4\tvers=4.2,_netdev\t0   0",
                "+127.0.0.1:/models\t/mnt/h1-models   nfs4\tvers=4.2,_netdev,fsc\t0   0",
            ])
        expectNoSecret(diff, "fstab diff")
    }

    @Test func anEntryWithoutOptionsGetsTheFieldAndAMissingFinalNewlineStaysMissing() throws {
        let bed = try FstabBed()
        defer { bed.remove() }
        let fstab = try FstabFile(path: bed.fstab)
        #expect(fstab.setOptions("size=1m,fsc", forTarget: "/mnt/h1-last/"))
        try fstab.write()
        let text = try String(contentsOfFile: bed.fstab, encoding: .utf8)
        #expect(text.hasSuffix("\ntmpfs /mnt/h1-last tmpfs size=1m,fsc"))
        #expect(text.hasPrefix(secretFstab.replacingOccurrences(of: "tmpfs /mnt/h1-last tmpfs size=1m", with: "")))
    }

    @Test func bytesThatAreNotUTF8AndCRLFLinesStayAsTheyWere() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fstab"
        let latin1Comment: [UInt8] = Array("# share of M".utf8) + [0xFC] + Array("ller's team\r\n".utf8)
        let entry = Array("127.0.0.1:/m /mnt/m nfs4 vers=4.2 0 0\n".utf8)
        let last = Array("tmpfs\t/mnt/t tmpfs size=1m 0 0\r\n".utf8)
        try Data(latin1Comment + entry + last).write(to: URL(fileURLWithPath: path))
        let fstab = try FstabFile(path: path)
        #expect(fstab.setOptions("vers=4.2,fsc", forTarget: "/mnt/m"))
        try fstab.write()
        let written = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(written == latin1Comment + Array("127.0.0.1:/m /mnt/m nfs4 vers=4.2,fsc 0 0\n".utf8) + last)
    }

    @Test func fscEnableReportsOnlyTheChangedEntryWithoutSecrets() throws {
        // fsc already live on the NFS mount: only fstab changes (no remount), so this runs on files alone.
        let bed = try FstabBed(mountinfo: secretMountinfo(fscOnModels: true))
        defer { bed.remove() }
        let before = try bed.lines()
        let report = try FscSwitch(enable: true, mountpoints: ["/mnt/h1-models"], roots: bed.roots).run()
        let mount = try #require(report.mounts.first)
        #expect(!report.failed && mount.fstabChanged)
        let after = try bed.lines()
        for (index, line) in before.enumerated() where !line.contains("/mnt/h1-models") {
            #expect(after[index] == line)
        }
        let diffLines = (mount.fstabDiff ?? "").split(separator: "\n")
            .filter { ($0.hasPrefix("-") || $0.hasPrefix("+")) && !$0.hasPrefix("---") && !$0.hasPrefix("+++") }
        #expect(diffLines.count == 2 && diffLines.allSatisfy { $0.contains("/mnt/h1-models") })
        expectNoSecret(mount.fstabDiff, "fstab_diff")
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        expectNoSecret(json, "report JSON")
    }

    @Test func cifsEntriesWithAnyPasswordFormAreRefusedWithoutEchoingIt() throws {
        let bed = try FstabBed()
        defer { bed.remove() }
        for target in ["/mnt/h1-a", "/mnt/h1-b", "/mnt/h1-c"] {
            let report = try FscSwitch(enable: true, mountpoints: [target], check: true, roots: bed.roots).run()
            let mount = try #require(report.mounts.first)
            #expect(
                mount.failed && mount.error?.contains("holds a password") == true, "\(target): \(mount.error ?? "")")
            expectNoSecret(String(decoding: try JSONEncoder().encode(report), as: UTF8.self), "report for \(target)")
        }
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == secretFstab)
    }

    @Test func listedMountsShowNoSecret() throws {
        let bed = try FstabBed()
        defer { bed.remove() }
        let mounts = try NetworkMounts.list(roots: bed.roots)
        #expect(mounts.count == 4)
        expectNoSecret(String(decoding: try JSONEncoder().encode(mounts), as: UTF8.self), "mounts JSON")
    }
}

@Suite struct FstabLockTests {
    /// Two runs at once on different entries of one fstab: both edits land, every round.
    @Test func concurrentEnablesOnDifferentEntriesBothLand() throws {
        let text =
            "# two shares\n"
            + (1...2).map { "127.0.0.1:/m\($0)  /mnt/h1-m\($0)  nfs4  vers=4.2,_netdev  0 0\n" }.joined()
        let info =
            "29 1 0:24 / / rw - ext4 /dev/vda1 rw\n"
            + (1...2).map { "4\($0) 29 0:4\($0) / /mnt/h1-m\($0) rw - nfs4 127.0.0.1:/m\($0) rw,vers=4.2,fsc\n" }
            .joined()
        let bed = try FstabBed(fstab: text, mountinfo: info)
        defer { bed.remove() }
        var lost: [Int] = []
        for round in 0..<60 {
            try text.write(toFile: bed.fstab, atomically: false, encoding: .utf8)
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                let report = try? FscSwitch(enable: true, mountpoints: ["/mnt/h1-m\(index + 1)"], roots: bed.roots)
                    .run()
                if report == nil || report?.failed == true { failures.add(report?.mounts.first?.error ?? "threw") }
            }
            #expect(failures.all.isEmpty, "round \(round): \(failures.all)")
            let entries = try MountTable.fstab(bed.fstab)
            if !entries.allSatisfy({ OptionString.contains($0.options, "fsc") }) { lost.append(round) }
        }
        #expect(lost.isEmpty, "fsc lost from fstab in rounds \(lost)")
        #expect(FileManager.default.fileExists(atPath: bed.fstab + ".lock"))
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ item: String) { lock.withLock { items.append(item) } }
    var all: [String] { lock.withLock { items } }
}

@Suite struct PendingMountTests {
    /// fstab already says fsc, nothing is mounted: the half-done state a killed
    /// `fsc enable` leaves. The plan is to mount it from fstab, not to refuse.
    @Test func aKilledEnableIsRecognisedAndThePlanMountsFromFstab() throws {
        let text =
            "127.0.0.1:/models /mnt/h1-models nfs4 vers=4.2,fsc,port=1 0 0\n//127.0.0.1/s /mnt/h1-s cifs credentials=/etc/c 0 0\n"
        let bed = try FstabBed(fstab: text, mountinfo: "29 1 0:24 / / rw - ext4 /dev/vda1 rw\n")
        defer { bed.remove() }
        let switcher = FscSwitch(enable: true, mountpoints: ["/mnt/h1-models"], check: true, roots: bed.roots)
        let mounted = try MountTable.mounted(mountinfo: bed.dir + "/proc/self/mountinfo")
        let fstab = try MountTable.fstab(bed.fstab)
        #expect(switcher.pendingMount("/mnt/h1-models", mounted: mounted, fstab: fstab)?.source == "127.0.0.1:/models")
        // Not cachectl's work: an entry without fsc that is not mounted, or no entry at all.
        #expect(switcher.pendingMount("/mnt/h1-s", mounted: mounted, fstab: fstab) == nil)
        #expect(switcher.pendingMount("/mnt/elsewhere", mounted: mounted, fstab: fstab) == nil)
        // The disable direction: fstab already without fsc.
        let disabling = FscSwitch(enable: false, mountpoints: ["/mnt/h1-s"], check: true, roots: bed.roots)
        #expect(disabling.pendingMount("/mnt/h1-s", mounted: mounted, fstab: fstab)?.fstype == "cifs")

        // port=1: nothing listens, so the check stops at the probe, saying so, after naming the plan.
        let report = try switcher.run()
        let mount = try #require(report.mounts.first)
        #expect(mount.actions.contains { $0.contains("mount /mnt/h1-models from its fstab entry") })
        #expect(mount.error?.contains("nothing is mounted") != true)
        #expect(mount.error?.contains("unreachable") == true)
    }

    @Test func withTheServerUpTheCheckPlansTheMount() throws {
        let listener = try TCPListener()
        let text = "127.0.0.1:/models /mnt/h1-models nfs4 vers=4.2,fsc,port=\(listener.port) 0 0\n"
        let bed = try FstabBed(fstab: text, mountinfo: "29 1 0:24 / / rw - ext4 /dev/vda1 rw\n")
        defer { bed.remove() }
        let report = try FscSwitch(enable: true, mountpoints: ["/mnt/h1-models"], check: true, roots: bed.roots).run()
        let mount = try #require(report.mounts.first)
        #expect(!mount.failed && mount.changed)
        #expect(
            mount.actions == ["would mount /mnt/h1-models from its fstab entry (vers=4.2,fsc,port=\(listener.port))"])
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == text)
    }
}

/// A TCP socket listening on 127.0.0.1 (an ephemeral port), so a server probe succeeds.
final class TCPListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
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
