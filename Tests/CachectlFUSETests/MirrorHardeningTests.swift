import CachectlMount
import CachectlSystem
import Foundation
import Glibc
import Testing

@testable import CachectlFUSE

/// Issue 13, class 7 (staleness, lifecycle) and the FUSE part of class 1. Real FUSE
/// mounts: run as root in a private mount namespace.
@Suite(.serialized, .enabled(if: Privileges.isRoot && Privileges.hasPrivateMountNamespace, "needs root in a private mount namespace (unshare -m)"))
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
        process.arguments = ["fuse", "mount", fx.source, fx.mountpoint, "--pool", "16M", "--foreground", "--state-dir", fx.stateDir]
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

        let check = try ExternalCommand([CLIBinary.path!, "fuse", "mount", fx.source, fx.mountpoint, "--pool", "16M",
                                         "--state-dir", fx.stateDir, "--check", "--json"]).run()
        #expect(check.status == 0)
        #expect(check.stdout.contains("\"changed\":true"))
        #expect(FuseMountTable.isDeadMirror(fx.mountpoint))

        let again = try ExternalCommand([CLIBinary.path!, "fuse", "mount", fx.source, fx.mountpoint, "--pool", "16M",
                                         "--state-dir", fx.stateDir, "--json"]).run()
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("\"msg\":\"mounted\""), "\(again.stdout)")
        #expect(fx.mounted)
        #expect(!FuseMountTable.isDeadMirror(fx.mountpoint))
        #expect(try Reads.whole(fx.mountpoint + "/x.bin") == bytes)
        let unmount = try ExternalCommand([CLIBinary.path!, "fuse", "unmount", fx.mountpoint, "--state-dir", fx.stateDir]).run()
        #expect(unmount.status == 0, "\(unmount.stderr)")
        #expect(!fx.mounted)
    }
}
