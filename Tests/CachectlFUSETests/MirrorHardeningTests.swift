import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlFUSE

/// Issue 13, class 7 (staleness, lifecycle) and the FUSE part of class 1. Real FUSE
/// mounts: run as root in a private mount namespace.
@Suite(
    .serialized,
    .rootInPrivateMountNamespace)
struct MirrorHardeningTests {
    /// `rsync --inplace -t`: same inode, same size, new bytes, old mtime put back.
    @Test func anInPlaceRewriteWithTheOldMtimeIsReadAgain() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let before = pseudoRandom(3 * 1024 * 1024, seed: 31)
        fx.write("model.gguf", before)
        let path = fx.source + "/model.gguf"
        var original = stat()
        #expect(stat(path, &original) == 0)
        try fx.mount(pool: 32 << 20, chunk: 1 << 20, attributeTimeout: 0.2)
        #expect(try Reads.whole(fx.mountpoint + "/model.gguf") == before)

        usleep(20_000)  // let the clock move, so the ctime differs
        let after = pseudoRandom(before.count, seed: 32)
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        #expect(fd >= 0)
        #expect(after.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } == after.count)
        close(fd)
        var times = [original.st_atim, original.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        var now = stat()
        #expect(stat(path, &now) == 0)
        #expect(now.st_size == original.st_size)
        #expect(now.st_mtim.tv_sec == original.st_mtim.tv_sec && now.st_mtim.tv_nsec == original.st_mtim.tv_nsec)
        #expect(now.st_ino == original.st_ino)

        usleep(500_000)  // past the attribute timeout
        #expect(try Reads.whole(fx.mountpoint + "/model.gguf") == after)
    }

    /// A mirror whose daemon was SIGKILLed answers ENOTCONN; `fuse mount` again
    /// detaches it and serves the source.
    @Test(.enabled(if: CLIBinary.path != nil, "build the cachectl product first"))
    func mountingOverADeadMirrorRecovers() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let bytes = pseudoRandom(2 * 1024 * 1024 + 3, seed: 33)
        fx.write("x.bin", bytes)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLIBinary.path!)
        process.arguments = [
            "fuse", "mount", fx.source, fx.mountpoint, "--pool", "16M", "--foreground", "--state-dir", fx.stateDir,
        ]
        try process.run()
        let deadline = Monotonic.now() + 10
        while !fx.mounted && Monotonic.now() < deadline { usleep(20_000) }
        #expect(fx.mounted)
        #expect(try Reads.whole(fx.mountpoint + "/x.bin") == bytes)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        var st = statvfs()
        #expect(statvfs(fx.mountpoint, &st) == -1 && errno == ENOTCONN)
        #expect(FuseMountTable.isDeadMirror(fx.mountpoint))

        let check = try ExternalCommand([
            CLIBinary.path!, "fuse", "mount", fx.source, fx.mountpoint, "--pool", "16M",
            "--state-dir", fx.stateDir, "--check", "--json",
        ]).run()
        #expect(check.status == 0)
        #expect(check.stdout.contains("\"changed\":true"))
        #expect(FuseMountTable.isDeadMirror(fx.mountpoint))

        let again = try ExternalCommand([
            CLIBinary.path!, "fuse", "mount", fx.source, fx.mountpoint, "--pool", "16M",
            "--state-dir", fx.stateDir, "--json",
        ]).run()
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("\"msg\":\"mounted\""), "\(again.stdout)")
        #expect(fx.mounted)
        #expect(!FuseMountTable.isDeadMirror(fx.mountpoint))
        #expect(try Reads.whole(fx.mountpoint + "/x.bin") == bytes)
        let unmount = try ExternalCommand([
            CLIBinary.path!, "fuse", "unmount", fx.mountpoint, "--state-dir", fx.stateDir,
        ]).run()
        #expect(unmount.status == 0, "\(unmount.stderr)")
        #expect(!fx.mounted)
    }
}

/// Issue 13, class 1 (FUSE): what another user controls in the source, and the
/// state directory. Other users are real (setpriv as nobody, 65534).
extension MirrorHardeningTests {
    static let asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

    /// A root mount that other users may enter (allow_other), with a long entry
    /// timeout so the kernel keeps a looked-up directory as it was.
    func mountForOthers(_ fx: MirrorFixture) throws -> MirrorMount {
        chmod(fx.root, 0o755)
        var options = MirrorOptions(source: fx.source, mountpoint: fx.mountpoint, poolBytes: 16 << 20)
        options.allowOther = true
        options.attributeTimeout = 60
        options.statsDirectory = fx.stateDir
        options.prefetchFiles = 0
        return try MirrorMount.mount(options)
    }

    /// A directory of the source swapped for a symlink to a 0700 directory outside
    /// it: the mirror must not serve what is behind the link.
    @Test func aDirectorySwappedForASymlinkOutOfTheSourceIsNotFollowed() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        fx.write("d/f", Array("public\n".utf8))
        let secret = fx.root + "/secret"
        mkdir(secret, 0o700)
        _ = FileManager.default.createFile(atPath: secret + "/f", contents: Data("root's secret\n".utf8))
        chmod(secret + "/f", 0o644)
        let mount = try mountForOthers(fx)
        defer { mount.stop() }

        // nobody looks the directory up: the kernel now holds "d" as a directory.
        let before = try ExternalCommand(Self.asNobody + ["stat", "-c", "%F", fx.mountpoint + "/d"]).run()
        #expect(before.stdout == "directory\n", "\(before.stderr)")
        #expect(rename(fx.source + "/d", fx.source + "/d.old") == 0)
        #expect(symlink(secret, fx.source + "/d") == 0)

        let after = try ExternalCommand(Self.asNobody + ["cat", fx.mountpoint + "/d/f"]).run()
        #expect(!after.stdout.contains("secret"), "the mirror followed the swapped link: \(after.stdout)")
        #expect(after.status != 0)
        // The moved directory is still served where it is now.
        let moved = try ExternalCommand(Self.asNobody + ["cat", fx.mountpoint + "/d.old/f"]).run()
        #expect(moved.stdout == "public\n", "\(moved.stderr)")
    }

    /// An ACL entry that denies nobody a 0644 file in the source denies them in the
    /// mirror too; another user is still let in.
    @Test func anACLThatDeniesAUserInTheSourceDeniesThemInTheMirror() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        fx.write("acl.txt", Array("not for nobody\n".utf8))
        chmod(fx.source + "/acl.txt", 0o644)
        guard POSIXACL.set(fx.source + "/acl.txt", denying: 65534, mode: 0o644) else {
            Issue.record("this filesystem does not take POSIX ACLs (errno \(errno))")
            return
        }
        let direct = try ExternalCommand(Self.asNobody + ["cat", fx.source + "/acl.txt"]).run()
        #expect(direct.status != 0, "the source denies nobody")

        let mount = try mountForOthers(fx)
        defer { mount.stop() }
        let denied = try ExternalCommand(Self.asNobody + ["cat", fx.mountpoint + "/acl.txt"]).run()
        #expect(denied.status != 0, "nobody read through the mirror: \(denied.stdout)")
        #expect(denied.stderr.contains("Permission denied"), "\(denied.stderr)")
        let other = try ExternalCommand([
            "setpriv", "--reuid=65533", "--regid=65533", "--clear-groups", "--", "cat", fx.mountpoint + "/acl.txt",
        ]).run()
        #expect(other.stdout == "not for nobody\n", "\(other.stderr)")
    }

    /// Without XDG_RUNTIME_DIR a user's state directory is /tmp/cachectl-UID. When
    /// another user made it first (with the log a symlink to the victim's file),
    /// cachectl refuses it and the victim's file is untouched. /tmp is a fresh
    /// tmpfs in a child mount namespace.
    @Test(.enabled(if: CLIBinary.path != nil, "build the cachectl product first"))
    func aStateDirectoryAnotherUserMadeIsRefusedAndItsLogLinkNotFollowed() throws {
        let base = try makeTemporaryDirectory("fuse-state", in: "/var/tmp")
        try FileManager.default.createDirectory(atPath: base + "/src", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/mnt", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        chmod(base, 0o755)
        chown(base + "/mnt", 65534, 65534)
        let victim = base + "/victim"
        _ = FileManager.default.createFile(atPath: victim, contents: Data("victim's own\n".utf8))
        chown(victim, 65534, 65534)
        chmod(victim, 0o600)
        let log = "/tmp/cachectl-65534/fuse/" + FuseStatsFile.escape(base + "/mnt") + ".log"
        // The tmpfs below hides /tmp, where the checkout (and so the binary) may live.
        // The copy is cp's, in the child: Foundation's copyItem writes through a
        // descriptor without O_CLOEXEC, which a process another suite spawns meanwhile
        // would keep open for its life, and running the copy would fail with ETXTBSY.
        let binary = base + "/cachectl"
        let script = """
            set -e
            cp -- '\(CLIBinary.path!)' '\(binary)'
            mount -t tmpfs -o mode=1777 tmpfs /tmp
            mkdir -p /tmp/cachectl-65534/fuse
            chown -R 65533:65533 /tmp/cachectl-65534
            chmod 0777 /tmp/cachectl-65534 /tmp/cachectl-65534/fuse
            setpriv --reuid=65533 --regid=65533 --clear-groups -- ln -s '\(victim)' '\(log)'
            set +e
            env -u XDG_RUNTIME_DIR setpriv --reuid=65534 --regid=65534 --clear-groups -- \
                '\(binary)' fuse mount '\(base)/src' '\(base)/mnt' --pool 16M --json
            echo "status=$?"
            """
        let result = try ExternalCommand(["unshare", "--mount", "--propagation", "private", "sh", "-c", script]).run()
        #expect(result.stdout.contains("status=1"), "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("belongs to uid 65533"), "\(result.stdout)")
        #expect(try AtomicFile.readText(victim) == "victim's own\n", "the victim's file was written through the link")
    }
}

/// Writes a POSIX ACL (the system.posix_acl_access xattr, in the kernel's
/// version-2 format) that gives `mode`'s bits and denies one user everything.
enum POSIXACL {
    typealias SetXattr =
        @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer, Int, Int32) -> Int32

    static func set(_ path: String, denying uid: UInt32, mode: mode_t) -> Bool {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setxattr") else { return false }
        let setxattr = unsafeBitCast(symbol, to: SetXattr.self)
        let undefined: UInt32 = 0xFFFF_FFFF
        let entries: [(tag: UInt16, perm: UInt16, id: UInt32)] = [
            (0x01, UInt16((mode >> 6) & 7), undefined),  // ACL_USER_OBJ
            (0x02, 0, uid),  // ACL_USER: nothing
            (0x04, UInt16((mode >> 3) & 7), undefined),  // ACL_GROUP_OBJ
            (0x10, UInt16((mode >> 3) & 7), undefined),  // ACL_MASK
            (0x20, UInt16(mode & 7), undefined),  // ACL_OTHER
        ]
        var bytes: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(UInt32(2))
        for entry in entries {
            append(entry.tag)
            append(entry.perm)
            append(entry.id)
        }
        return bytes.withUnsafeBytes { setxattr(path, "system.posix_acl_access", $0.baseAddress!, $0.count, 0) } == 0
    }
}
