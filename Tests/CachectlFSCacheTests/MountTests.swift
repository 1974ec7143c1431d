import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlMount

func fixture(_ name: String) -> String {
    Bundle.module.path(forResource: "Fixtures/" + name, ofType: nil)!
}

func temporaryDirectory() -> String {
    try! makeTemporaryDirectory("test")
}

/// A table libmount cannot parse is freed once: the error path used to unref it and
/// then deinit did again (heap corruption, seen as aborts in ReadStrategyTests).
@Suite struct MountTableErrorTests {
    @Test func aMountTableThatCannotBeParsedIsFreedOnce() {
        for _ in 0..<500 {
            #expect(throws: CachectlError.self) { try MountTable.mounted(mountinfo: "/nonexistent/cachectl/mountinfo") }
            _ = [UInt8](repeating: 1, count: 64)  // an allocation of the freed block's size class
        }
    }
}

@Suite struct OptionStringTests {
    @Test func findsSetsAndRemovesWithLibmountRules() {
        let options = "ro,vers=4.2,context=\"system_u:object_r:nfs_t:s0,c1\",fsc=models"
        #expect(OptionString.contains(options, "fsc"))
        #expect(OptionString.value(options, "vers") == .some("4.2"))
        #expect(OptionString.value(options, "ro") == .some(nil))
        #expect(OptionString.value(options, "c1") == nil)  // inside the quoted context value
        #expect(OptionString.removing(options, "fsc") == "ro,vers=4.2,context=\"system_u:object_r:nfs_t:s0,c1\"")
        #expect(OptionString.setting("ro,_netdev", "fsc") == "ro,_netdev,fsc")
        #expect(OptionString.setting("", "fsc") == "fsc")
        #expect(OptionString.removing("fsc", "fsc") == "")
        #expect(OptionString.removing("fsc,ro,fsc=x", "fsc") == "ro")
    }

    @Test func redactsPasswords() {
        #expect(OptionString.redacted("username=u,password=s3cret,vers=3") == "username=u,password=***,vers=3")
    }
}

@Suite struct FstabTests {
    @Test func editsOneEntryAndKeepsComments() throws {
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fstab"
        try FileManager.default.copyItem(atPath: fixture("fstab-with-comments"), toPath: path)
        let fstab = try FstabFile(path: path)
        let entry = try #require(fstab.entry(forTarget: "/mnt/models/"))
        #expect(entry.fstype == "nfs4" && entry.options == "ro,vers=4.2,_netdev")
        #expect(fstab.setOptions(OptionString.setting(entry.options, "fsc"), forTarget: "/mnt/models"))
        #expect(try fstab.write())
        let written = try String(contentsOfFile: path, encoding: .utf8)
        for comment in [
            "# /etc/fstab: static file system information.", "# model share from the NAS (read-only)",
            "# SMB share; the password lives in the credentials file (mode 0600)",
        ] {
            #expect(written.contains(comment))
        }
        // Only the options field changes: the entry keeps its own spacing.
        #expect(written.contains("127.0.0.1:/     /mnt/models     nfs4    ro,vers=4.2,_netdev,fsc   0 0"))
        #expect(try MountTable.fstab(path).count == 4)
        // The backup is the file as it was.
        #expect(
            try String(contentsOfFile: path + ".cachectl.bak", encoding: .utf8)
                == String(contentsOfFile: fixture("fstab-with-comments"), encoding: .utf8))
        // Same options again: nothing to write.
        let again = try FstabFile(path: path)
        again.setOptions("ro,vers=4.2,_netdev,fsc", forTarget: "/mnt/models")
        #expect(try again.write() == false)
    }
}

@Suite struct BusyScanTests {
    @Test func namesAProcessWhoseWorkingDirectoryIsUnderTheMount() throws {
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        sleeper.currentDirectoryURL = URL(fileURLWithPath: dir + "/sub")
        try sleeper.run()
        defer {
            kill(sleeper.processIdentifier, SIGKILL)
            sleeper.waitUntilExit()
        }
        let users = BusyScan.users(of: dir, device: nil)
        let user = try #require(users.first { $0.pid == sleeper.processIdentifier })
        #expect(user.command == "sleep")
        #expect(user.holds.contains("cwd"))
        #expect(BusyScan.users(of: dir + "-other", device: nil).allSatisfy { $0.pid != sleeper.processIdentifier })
    }

    @Test func findsOpenFilesAndMappings() throws {
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/model.gguf"
        try Data(repeating: 7, count: 8192).write(to: URL(fileURLWithPath: file))
        // python3 holds one file open and one mapped; both must be found.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            "import mmap,sys,time; f=open(sys.argv[1],'rb'); m=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ); print('ready',flush=True); time.sleep(30)",
            file,
        ]
        let pipe = Pipe()
        holder.standardOutput = pipe
        try holder.run()
        defer {
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
        }
        _ = pipe.fileHandleForReading.availableData  // waits for "ready"
        let user = try #require(BusyScan.users(of: dir, device: nil).first { $0.pid == holder.processIdentifier })
        #expect(user.holds.contains { $0.hasPrefix("fd ") && $0.hasSuffix("/model.gguf") })
        #expect(user.holds.contains("mmap \(file)"))
    }
}

/// cachectl asks "does cachefilesd run?" by name; a daemon that exited but is not
/// yet reaped (a zombie of the cachectl that started it) must not count.
@Suite struct ProcessNameTests {
    @Test func findsALiveProcessButNotAZombie() throws {
        let live = try Spawn.start("/bin/sleep", arguments: ["30"], descriptors: [:], detach: .processGroup)
        let dead = try Spawn.start("/bin/sleep", arguments: ["0"], descriptors: [:], detach: .processGroup)
        defer {
            kill(live, SIGKILL)
            var status: Int32 = 0
            waitpid(live, &status, 0)
            waitpid(dead, &status, 0)
        }
        // Not reaped yet: its /proc entry stays, in state Z.
        let deadline = Date().addingTimeInterval(10)
        while !Processes.isZombie(dead, proc: "/proc") && Date() < deadline { usleep(10_000) }
        #expect(Processes.isZombie(dead, proc: "/proc"))
        #expect(!Processes.isZombie(live, proc: "/proc"))
        let named = Processes.named("sleep")
        #expect(named.contains(live))
        #expect(!named.contains(dead))
    }
}

@Suite struct DeviceNumberTests {
    @Test func splitsDevT() {
        // makedev(259, 65539): glibc's encoding spreads major and minor bits.
        let dev: UInt64 = (UInt64(259 & 0xfff) << 8) | (UInt64(65539 & 0xff)) | (UInt64(65539 & ~0xff) << 12)
        #expect(DeviceNumber(dev) == DeviceNumber(major: 259, minor: 65539))
        #expect(DeviceNumber(parsing: "0:53") == DeviceNumber(major: 0, minor: 53))
        #expect(DeviceNumber(parsing: "0:x") == nil)
    }

    @Test func splitsShareSources() {
        #expect(NetworkMounts.splitSource("nas:/export/models", fstype: "nfs4") == ("nas", "/export/models"))
        #expect(NetworkMounts.splitSource("[fd00::1]:/models", fstype: "nfs") == ("fd00::1", "/models"))
        #expect(NetworkMounts.splitSource("//127.0.0.1/models", fstype: "cifs") == ("127.0.0.1", "/models"))
    }
}
