import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlFUSE

/// A source tree, a mountpoint and a stats directory in a fresh temp directory.
final class MirrorFixture: @unchecked Sendable {
    let root: String
    var source: String { root + "/src" }
    var mountpoint: String { root + "/mnt" }
    var stateDir: String { root + "/state" }
    private(set) var mount: MirrorMount?

    init() throws {
        root = try makeTemporaryDirectory("fuse-test")
        mkdir(source, 0o755)
        mkdir(mountpoint, 0o755)
    }

    func write(_ relative: String, _ bytes: [UInt8]) {
        let path = source + "/" + relative
        try? FileManager.default.createDirectory(atPath: Path.directory(of: path), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    @discardableResult
    func mount(
        pool: UInt64, chunk: Int = 1 << 20, compression: CompressionMode = .auto, prefetch: Int = 2,
        attributeTimeout: Double = 1.0, passthrough: Bool = true
    ) throws -> MirrorMount {
        var options = MirrorOptions(source: source, mountpoint: mountpoint, poolBytes: pool)
        options.passthrough = passthrough
        options.chunkBytes = chunk
        options.compression = compression
        options.prefetchFiles = prefetch
        options.attributeTimeout = attributeTimeout
        options.statsDirectory = stateDir
        options.statsInterval = 0.1
        let mount = try MirrorMount.mount(options)
        self.mount = mount
        return mount
    }

    /// Unmounts (if still mounted) and removes the tree: every test path ends here.
    func tearDown() {
        mount?.stop()
        if (try? MountTable.entry(at: mountpoint)) != nil { umount2(mountpoint, Int32(MNT_DETACH)) }
        try? FileManager.default.removeItem(atPath: root)
    }

    var mounted: Bool { FuseMountTable.isMirror(mountpoint) }
}

/// Whole-file and ranged reads that go to the daemon, not the page cache of the mount.
enum Reads {
    static func whole(_ path: String) throws -> [UInt8] {
        let file = try OpenFile(path)
        _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_DONTNEED)
        return try AtomicFile.readBytes(path)
    }

    static func range(_ file: OpenFile, offset: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { buffer in
                pread(file.fd, buffer.baseAddress! + done, count - done, off_t(offset + Int64(done)))
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw CachectlError("read", path: file.path, errno: errno) }
            if n == 0 { break }
            done += n
        }
        return Array(out[0..<done])
    }

    static func dropPageCache(_ file: OpenFile) { _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_DONTNEED) }
}

func pseudoRandom(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    for i in stride(from: 0, to: count, by: 8) {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        var word = state ^ (state >> 29)
        for j in i..<min(i + 8, count) {
            out[j] = UInt8(truncatingIfNeeded: word)
            word >>= 8
        }
    }
    return out
}

func compressible(_ count: Int) -> [UInt8] {
    Array(String(repeating: "tensor blk.0.attn_q.weight f16 [4096, 4096]\n", count: count / 44 + 1).utf8.prefix(count))
}

/// Real FUSE mounts in this process. Run as root in a private mount namespace:
/// `unshare -m --propagation private swift test --filter MirrorMountTests`.
@Suite(
    .serialized,
    .rootInPrivateMountNamespace)
struct MirrorMountTests {
    /// The CLI's unmount: refused while a file is open, then forced (lazy detach,
    /// and the FUSE connection aborted when fusectl is mounted).
    @Test func unmountRefusesWhileBusyAndForceDetaches() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        fx.write("held", pseudoRandom(8192, seed: 9))
        try fx.mount(pool: 16 << 20)
        #expect(FuseMountTable.isMirror(fx.mountpoint))
        let minor = try #require(try MountTable.entry(at: fx.mountpoint)?.device?.minor)
        let held = try OpenFile(fx.mountpoint + "/held")
        #expect(try FuseMountTable.unmount(fx.mountpoint, force: false) == .busy)
        #expect(FuseMountTable.isMirror(fx.mountpoint))
        let abortable = access("/sys/fs/fuse/connections/\(minor)/abort", W_OK) == 0
        #expect(try FuseMountTable.unmount(fx.mountpoint, force: true) == .unmounted)
        #expect(!FuseMountTable.isMirror(fx.mountpoint))
        if abortable {
            var byte: UInt8 = 0
            #expect(pread(held.fd, &byte, 1, 4096) == -1 && errno == ENOTCONN)
        }
    }

    @Test func everyFileIsIdenticalThroughTheMountAndWritesAreRefused() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let files: [String: [UInt8]] = [
            "empty": [], "one": [42], "page+1": pseudoRandom(4097, seed: 1),
            "model-00001-of-00002.gguf": pseudoRandom(9 * 1024 * 1024 + 123, seed: 2),
            "model-00002-of-00002.gguf": compressible(6 * 1024 * 1024 + 7),
            "sub/deeper/notes.txt": compressible(100_000),
        ]
        for (name, bytes) in files { fx.write(name, bytes) }
        link(fx.source + "/page+1", fx.source + "/sub/hardlink")
        symlink("../one", fx.source + "/sub/symlink")
        try fx.mount(pool: 64 << 20)

        for (name, bytes) in files {
            #expect(try Reads.whole(fx.mountpoint + "/" + name) == bytes, "content of \(name)")
        }
        #expect(try Reads.whole(fx.mountpoint + "/sub/hardlink") == files["page+1"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: fx.mountpoint + "/sub/symlink") == "../one")
        #expect(try Reads.whole(fx.mountpoint + "/sub/symlink") == [42])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: fx.mountpoint).sorted()
                == FileManager.default.contentsOfDirectory(atPath: fx.source).sorted())
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: fx.mountpoint + "/sub").sorted()
                == ["deeper", "hardlink", "symlink"])

        var mirrored = stat()
        var original = stat()
        stat(fx.mountpoint + "/model-00001-of-00002.gguf", &mirrored)
        stat(fx.source + "/model-00001-of-00002.gguf", &original)
        #expect(mirrored.st_size == original.st_size && mirrored.st_ino == original.st_ino)
        #expect(mirrored.st_mode == original.st_mode && mirrored.st_mtim.tv_sec == original.st_mtim.tv_sec)

        #expect(open(fx.mountpoint + "/one", O_WRONLY) == -1 && errno == EROFS)
        #expect(open(fx.mountpoint + "/new", O_WRONLY | O_CREAT, 0o644) == -1 && errno == EROFS)
        #expect(mkdir(fx.mountpoint + "/dir", 0o755) == -1 && errno == EROFS)
        #expect(unlink(fx.mountpoint + "/one") == -1 && errno == EROFS)
        var vfs = statvfs()
        #expect(statvfs(fx.mountpoint, &vfs) == 0 && vfs.f_blocks > 0)
    }

    @Test func randomOffsetReadsMatchTheSource() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let bytes = pseudoRandom(20 * 1024 * 1024 + 333, seed: 3)
        fx.write("big.bin", bytes)
        try fx.mount(pool: 8 << 20, chunk: 1 << 20)
        let file = try OpenFile(fx.mountpoint + "/big.bin")
        var generator = SystemRandomNumberGenerator()
        for round in 0..<120 {
            if round % 10 == 0 { Reads.dropPageCache(file) }
            let offset = Int.random(in: 0..<bytes.count, using: &generator)
            let count = Int.random(in: 1...(3 << 20), using: &generator)
            let got: [UInt8]
            do {
                got = try Reads.range(file, offset: Int64(offset), count: count)
            } catch {
                Issue.record("read of \(count) at \(offset) (round \(round)): \(error)")
                break
            }
            let expected = Array(bytes[offset..<min(bytes.count, offset + count)])
            #expect(got == expected, "read of \(count) at \(offset)")
            if got != expected { break }
        }
        // Past the end: nothing.
        #expect(try Reads.range(file, offset: Int64(bytes.count + 10), count: 100).isEmpty)
    }

    @Test func manyConcurrentReadersSeeTheSameBytes() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let contents = (0..<4).map { pseudoRandom(6 * 1024 * 1024 + $0 * 4099, seed: UInt64(10 + $0)) }
        for (i, bytes) in contents.enumerated() { fx.write("shard\(i)", bytes) }
        let mount = try fx.mount(pool: 12 << 20, chunk: 512 << 10)  // smaller than the 24 MiB set
        let failures = Counter()
        let threads = (0..<12).map { reader in
            Thread {
                do {
                    for round in 0..<6 {
                        let which = (reader + round) % contents.count
                        let file = try OpenFile(fx.mountpoint + "/shard\(which)")
                        Reads.dropPageCache(file)
                        let expected = contents[which]
                        let offset = (reader * 777_777 + round * 1_234_567) % expected.count
                        let got = try Reads.range(file, offset: Int64(offset), count: 2 << 20)
                        if got != Array(expected[offset..<min(expected.count, offset + (2 << 20))]) { failures.add() }
                    }
                } catch {
                    failures.add()
                }
            }
        }
        try runAll(threads)
        #expect(failures.value == 0)
        let stats = mount.stats()
        #expect(stats.poolPeakBytes <= stats.poolLimitBytes)
        #expect(stats.hits + stats.inflightWaits > 0)
    }

    @Test func poolNeverExceedsItsLimitUnderALargerWorkingSet() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        for i in 0..<3 { fx.write("f\(i)", pseudoRandom(8 * 1024 * 1024, seed: UInt64(20 + i))) }
        let limit: UInt64 = 4 << 20
        let mount = try fx.mount(pool: limit, chunk: 256 << 10, compression: .off)
        let sampler = Sampler { mount.stats().poolUsedBytes }
        for _ in 0..<2 {
            for i in 0..<3 { _ = try Reads.whole(fx.mountpoint + "/f\(i)") }
        }
        let sampled = sampler.stop()
        let stats = mount.stats()
        #expect(sampled.max()! <= limit)
        #expect(stats.poolPeakBytes <= limit)
        #expect(stats.poolUsedBytes <= limit && stats.poolUsedBytes > limit / 2)
        #expect(stats.evictions > 0)
        #expect(stats.bytesFromSource >= 2 * 24 * 1024 * 1024)  // nothing fits twice: all re-read
        // The stats file carries the same picture (written within statsInterval).
        usleep(400_000)
        let published = try FuseStatsFile.read(mountpoint: fx.mountpoint, directory: fx.stateDir)
        #expect(published.poolLimitBytes == limit && published.poolPeakBytes <= limit)
        #expect(published.pid == getpid() && published.evictions > 0)
    }

    @Test(arguments: [CompressionMode.auto, .lz4])
    func compressibleDataIsStoredCompressedAndRandomDataRaw(mode: CompressionMode) throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let text = compressible(8 * 1024 * 1024)
        let noise = pseudoRandom(8 * 1024 * 1024, seed: 5)
        fx.write("a-text", text)
        fx.write("b-noise", noise)
        let mount = try fx.mount(pool: 64 << 20, chunk: 1 << 20, compression: mode, prefetch: 0)
        #expect(try Reads.whole(fx.mountpoint + "/a-text") == text)
        #expect(try Reads.whole(fx.mountpoint + "/b-noise") == noise)
        // Chunks a reader waited for are compressed in the background: give it a moment.
        var stats = mount.stats()
        for _ in 0..<50 where stats.files.first(where: { $0.path == "/a-text" })?.compressionRatio ?? 0 < 2 {
            usleep(100_000)
            stats = mount.stats()
        }
        let textRatio = stats.files.first { $0.path == "/a-text" }?.compressionRatio ?? 0
        let noiseRatio = stats.files.first { $0.path == "/b-noise" }?.compressionRatio ?? 0
        #expect(textRatio > 5)
        #expect(noiseRatio == 1.0)  // random data is kept raw in both modes (LZ4 cannot shrink it)
        #expect(stats.compressionRatio > 1.5)
        #expect(stats.poolUsedBytes < 10 * 1024 * 1024)
        // And it still reads back right from the compressed pool.
        #expect(try Reads.whole(fx.mountpoint + "/a-text") == text)
        #expect(mount.stats().hits > 0)
    }

    @Test func aSourceFileChangedUnderneathIsReadAgain() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let before = pseudoRandom(3 * 1024 * 1024, seed: 6)
        fx.write("model.gguf", before)
        let mount = try fx.mount(pool: 32 << 20, chunk: 1 << 20, attributeTimeout: 0.2)
        #expect(try Reads.whole(fx.mountpoint + "/model.gguf") == before)
        // Rewrite in place (same inode): new size and mtime.
        let after = pseudoRandom(2 * 1024 * 1024 + 5, seed: 7)
        let fd = open(fx.source + "/model.gguf", O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        let written = after.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #expect(written == after.count)
        usleep(500_000)  // past the attribute timeout
        #expect(try AtomicFile.readBytes(fx.mountpoint + "/model.gguf") == after)
        #expect(mount.stats().invalidations >= 1)
    }

    @Test func unmountUnderLoadEndsReadersAndLeavesNothingMounted() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let bytes = pseudoRandom(16 * 1024 * 1024, seed: 8)
        fx.write("busy.bin", bytes)
        let mount = try fx.mount(pool: 8 << 20, chunk: 1 << 20)
        let stopFlag = Counter()
        let wrongBytes = Counter()
        let readers = (0..<6).map { reader in
            Thread {
                guard let file = try? OpenFile(fx.mountpoint + "/busy.bin") else { return }
                var offset = reader * 1_000_003
                while stopFlag.value == 0 {
                    Reads.dropPageCache(file)
                    guard let got = try? Reads.range(file, offset: Int64(offset % bytes.count), count: 1 << 20) else {
                        break
                    }
                    let start = offset % bytes.count
                    if !got.isEmpty && got != Array(bytes[start..<(start + got.count)]) { wrongBytes.add() }
                    offset += 3 * 1_048_583
                }
            }
        }
        readers.forEach { $0.start() }
        usleep(500_000)
        let started = Monotonic.now()
        mount.stop()  // files are open: the unmount is lazy and the connection closes
        #expect(Monotonic.now() - started < 10)
        #expect(!fx.mounted)
        stopFlag.add()
        for reader in readers { while !reader.isFinished { usleep(10_000) } }
        #expect(wrongBytes.value == 0)
        #expect(!FileManager.default.fileExists(atPath: FuseStatsFile.path(for: fx.mountpoint, in: fx.stateDir)))
    }

    /// The CLI daemon end to end: `--foreground` serves until SIGTERM, then unmounts.
    @Test(.enabled(if: CLIBinary.path != nil, "build the cachectl product first"))
    func theCommandUnmountsCleanlyOnSIGTERM() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let bytes = pseudoRandom(5 * 1024 * 1024, seed: 9)
        fx.write("x.bin", bytes)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLIBinary.path!)
        process.arguments = [
            "fuse", "mount", fx.source, fx.mountpoint, "--pool", "16M", "--foreground",
            "--state-dir", fx.stateDir, "--json",
        ]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let deadline = Monotonic.now() + 10
        while !fx.mounted && Monotonic.now() < deadline { usleep(20_000) }
        #expect(fx.mounted)
        #expect(try Reads.whole(fx.mountpoint + "/x.bin") == bytes)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(!fx.mounted)
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.contains("\"msg\":\"mounted\""))
    }
}

extension MirrorMountTests {
    /// A user without privileges mounts through fusermount3 and unmounts with
    /// `cachectl fuse unmount` (fusermount3 -u). This machine's /dev/fuse is 0600,
    /// so the test binds a 0666 node over it inside its own mount namespace only.
    @Test(
        .enabled(
            if: CLIBinary.path != nil && access("/usr/bin/fusermount3", X_OK) == 0,
            "needs the cachectl product and fusermount3"))
    func aUserWithoutPrivilegesMountsAndUnmounts() throws {
        let fx = try MirrorFixture()
        defer { fx.tearDown() }
        let bytes = pseudoRandom(3 * 1024 * 1024 + 17, seed: 21)
        fx.write("model.gguf", bytes)
        mkdir(fx.stateDir, 0o755)
        chmod(fx.root, 0o755)
        for dir in [fx.mountpoint, fx.stateDir] { #expect(chown(dir, 65534, 65534) == 0) }

        let devices = fx.root + "/dev"
        mkdir(devices, 0o755)
        #expect(mount("tmpfs", devices, "tmpfs", 0, "mode=0755") == 0)
        defer { umount2(devices, Int32(MNT_DETACH)) }
        let fuseDevice = dev_t((10 << 8) | 229)  // makedev(10, 229), /dev/fuse
        #expect(mknod(devices + "/fuse", S_IFCHR | 0o666, fuseDevice) == 0)
        chmod(devices + "/fuse", 0o666)
        #expect(mount(devices + "/fuse", "/dev/fuse", nil, UInt(MS_BIND), nil) == 0)
        defer { umount2("/dev/fuse", Int32(MNT_DETACH)) }

        let asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments =
            Array(asNobody.dropFirst()) + [
                CLIBinary.path!, "fuse", "mount", fx.source, fx.mountpoint,
                "--pool", "16M", "--foreground", "--state-dir", fx.stateDir,
            ]
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let deadline = Monotonic.now() + 10
        while !fx.mounted && Monotonic.now() < deadline { usleep(20_000) }
        #expect(fx.mounted)
        let options = try MountTable.entry(at: fx.mountpoint)?.superOptions ?? ""
        #expect(options.contains("user_id=65534"), "mounted by nobody: \(options)")

        // Only the mounting user may enter a mount made without allow_other.
        let same = try ExternalCommand(asNobody + ["cmp", fx.source + "/model.gguf", fx.mountpoint + "/model.gguf"])
            .run()
        #expect(same.succeeded, "\(same.stderr)")
        #expect(access(fx.mountpoint + "/model.gguf", R_OK) != 0)

        let unmount = try ExternalCommand(
            asNobody + [CLIBinary.path!, "fuse", "unmount", fx.mountpoint, "--state-dir", fx.stateDir]
        ).run()
        #expect(unmount.succeeded, "\(unmount.stderr)")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(!fx.mounted)
    }
}

enum CLIBinary {
    /// The cachectl binary next to the test bundle (.build/debug/cachectl).
    static var path: String? {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var dir = Path.directory(of: exe)
        if dir.hasSuffix(".xctest") || dir.contains(".xctest/") {
            dir = Path.directory(of: String(dir.prefix(upTo: dir.range(of: ".xctest")!.lowerBound)))
        }
        let candidate = dir + "/cachectl"
        return access(candidate, X_OK) == 0 ? candidate : nil
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// Samples a value every few milliseconds on its own thread.
final class Sampler: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [UInt64] = []
    private var running = true
    private var thread: Thread?

    init(_ sample: @escaping @Sendable () -> UInt64) {
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                let v = sample()
                lock.withLock { values.append(v) }
                usleep(2000)
            }
        }
        self.thread = thread
        thread.start()
    }

    func stop() -> [UInt64] {
        lock.withLock { running = false }
        while !(thread?.isFinished ?? true) { usleep(1000) }
        return lock.withLock { values }
    }
}

func runAll(_ threads: [Thread]) throws {
    threads.forEach { $0.start() }
    let deadline = Monotonic.now() + 120
    for thread in threads {
        while !thread.isFinished {
            if Monotonic.now() > deadline { throw CachectlError.failed("readers did not finish in 120 s") }
            usleep(10_000)
        }
    }
}
