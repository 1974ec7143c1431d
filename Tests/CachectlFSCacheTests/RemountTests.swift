import CachectlSystem
import Foundation
import Glibc
import Synchronization
import Testing
@testable import CachectlMount

/// The unmount / mount again / roll back path of `fsc enable`, for real, on
/// tmpfs inside a private mount namespace:
///   unshare -m --propagation private swift test --scratch-path .build --filter RemountTests
/// tmpfs refuses the `fsc` option (EINVAL), which is exactly a failed mount
/// after the unmount: fstab must come back and the old mount with it.
@Suite(.enabled(if: Privileges.isRoot && Privileges.hasPrivateMountNamespace), .serialized)
struct RemountTests {
    struct Bed {
        let dir: String
        let target: String
        let fstab: String
        let fstabText: String

        init() throws {
            dir = temporaryDirectory()
            target = dir + "/mnt"
            fstab = dir + "/fstab"
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            fstabText = "# test fstab\n\n# the share under test\ntmpfs \(target) tmpfs size=1m,mode=0755 0 0\n"
            try fstabText.write(toFile: fstab, atomically: false, encoding: .utf8)
            try Mounter.mount(source: "tmpfs", target: target, fstype: "tmpfs", options: "size=1m,mode=0755")
        }

        func switcher(force: Bool = false, check: Bool = false) -> FscSwitch {
            var s = FscSwitch(enable: true, mountpoints: [target], force: force, check: check, roots: KernelRoots(etc: dir))
            s.testFilesystems = ["tmpfs"]
            return s
        }

        var mount: MountEntry? { MountTable.mount(at: target, in: (try? MountTable.mounted()) ?? []) }

        func tearDown() {
            while umount2(target, Int32(MNT_DETACH)) == 0 {}
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test func mountsAndUnmountsThroughLibmount() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let mount = try #require(bed.mount)
        #expect(mount.fstype == "tmpfs" && OptionString.value(mount.superOptions ?? "", "size") == .some("1024k"))
        try Mounter.unmount(bed.target)
        #expect(bed.mount == nil)
        #expect(throws: SystemError.self) { try Mounter.unmount(bed.target) }
    }

    @Test func aRejectedOptionFailsWithTheKernelsReason() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let other = bed.dir + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        do {
            try Mounter.mount(source: "tmpfs", target: other, fstype: "tmpfs", options: "size=1m,fsc")
            Issue.record("tmpfs accepted fsc")
        } catch {
            #expect(error.errno == EINVAL)
            #expect(error.description.contains(other))
        }
    }

    @Test func failedMountRestoresFstabAndTheOldMount() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let report = try bed.switcher().run()
        let result = try #require(report.mounts.first)
        #expect(report.failed && result.failed)
        #expect(result.error?.contains("mounted \(bed.target) again with its old options") == true)
        // Rolled back: nothing changed, and the mount's error is said once.
        #expect(!report.changed && !result.changed && !result.fstabChanged)
        #expect(result.error?.components(separatedBy: "mount tmpfs on").count == 2, "\(result.error ?? "")")
        #expect(result.error?.components(separatedBy: "EINVAL").count == 2, "\(result.error ?? "")")
        #expect(result.notes.contains { $0.hasPrefix("restored") })
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        let mount = try #require(bed.mount)
        #expect(!OptionString.contains(mount.superOptions ?? "", "fsc"))
        #expect(OptionString.value(mount.superOptions ?? "", "size") == .some("1024k"))
    }

    @Test func busyMountIsRefusedNamingTheProcess() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        sleeper.currentDirectoryURL = URL(fileURLWithPath: bed.target)
        try sleeper.run()
        defer { kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() }
        let report = try bed.switcher().run()
        let result = try #require(report.mounts.first)
        #expect(result.failed && !result.changed)
        #expect(result.busy.contains { $0.pid == sleeper.processIdentifier && $0.command == "sleep" })
        #expect(result.error?.contains("sleep (pid \(sleeper.processIdentifier))") == true)
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        #expect(bed.mount != nil)
    }

    @Test func checkChangesNothing() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let before = try #require(bed.mount)
        let report = try bed.switcher(check: true).run()
        let result = try #require(report.mounts.first)
        #expect(result.changed && !result.failed)
        #expect(result.actions.allSatisfy { $0.hasPrefix("would ") })
        #expect(result.fstabDiff?.contains("+tmpfs \(bed.target) tmpfs size=1m,mode=0755,fsc 0 0") == true)
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        #expect(bed.mount?.id == before.id)  // not remounted
    }

    /// The mount helper's own reason (mount.nfs on stderr) is the error, not "helper exited 32".
    @Test func aFailingHelpersStderrIsTheReason() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let other = bed.dir + "/nfs"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        do {
            try Mounter.mount(source: "127.0.0.1:/models", target: other, fstype: "nfs", options: "vers=4.2,retry=0")
            Issue.record("mounted NFS on a kernel without it")
        } catch {
            #expect(error.description.contains("mount.nfs: "), "\(error)")
            #expect(!error.description.contains("helper exited"), "\(error)")
        }
    }

    /// A share left unmounted by a killed run, fstab already as asked: the
    /// next run mounts it from fstab and checks it, instead of refusing.
    @Test func aShareLeftUnmountedIsMountedFromFstab() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        try Mounter.unmount(bed.target)
        var s = FscSwitch(enable: false, mountpoints: [bed.target], roots: KernelRoots(etc: bed.dir))
        s.testFilesystems = ["tmpfs"]
        let report = try s.run()
        let result = try #require(report.mounts.first)
        #expect(!result.failed && result.changed && result.remounted, "\(result.error ?? "")")
        #expect(result.fscAfter == false)
        #expect(result.actions.contains { $0.contains("from its fstab entry") })
        let mount = try #require(bed.mount)
        #expect(OptionString.value(mount.superOptions ?? "", "size") == .some("1024k"))
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        // Converged: the next run changes nothing.
        let again = try s.run()
        #expect(!again.changed && !again.failed)
    }

    /// SIGTERM as soon as fstab has been renamed (the moment systemd's stop
    /// used to leave the share unmounted): the step runs on to its rollback
    /// first, and the signal reaches the process's handler only after it.
    /// The handler looks at fstab when it runs: it must find it restored.
    @Test func aSIGTERMDuringTheRemountWaitsForTheRollback() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        SignalProbe.arm(fstab: bed.fstab)
        var previous = sigaction()
        var probe = sigaction()
        probe.__sigaction_handler.sa_handler = { _ in SignalProbe.handle() }
        sigemptyset(&probe.sa_mask)
        sigaction(SIGTERM, &probe, &previous)
        defer { sigaction(SIGTERM, &previous, nil) }

        let done = DispatchSemaphore(value: 0)
        let watcher = Thread {
            defer { done.signal() }
            // Send SIGTERM the moment fstab says fsc (right after the rename).
            for _ in 0..<20_000 {
                if let text = try? String(contentsOfFile: bed.fstab, encoding: .utf8), text.contains(",fsc") {
                    kill(getpid(), SIGTERM)
                    SignalProbe.sent.store(true, ordering: .sequentiallyConsistent)
                    return
                }
                usleep(50)
            }
        }
        watcher.start()
        let report = try bed.switcher().run()
        let result = try #require(report.mounts.first)
        done.wait()
        for _ in 0..<200 where SignalProbe.calls.load(ordering: .sequentiallyConsistent) == 0 { usleep(10_000) }
        let sent = SignalProbe.sent.load(ordering: .sequentiallyConsistent)
        let calls = SignalProbe.calls.load(ordering: .sequentiallyConsistent)
        let sawFsc = SignalProbe.sawFsc.load(ordering: .sequentiallyConsistent)
        #expect(sent, "the watcher never saw fstab change")
        #expect(result.failed && !result.changed)  // tmpfs refuses fsc: rolled back
        #expect(calls == 1)
        #expect(!sawFsc, "the handler ran before the rollback")
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        #expect(bed.mount != nil)
    }
}

/// A SIGTERM handler for the test: counts calls and records whether fstab had
/// fsc at that moment (open/read/close only: async-signal-safe).
enum SignalProbe {
    static let calls = Atomic<Int>(0)
    static let sent = Atomic<Bool>(false)
    static let sawFsc = Atomic<Bool>(false)
    nonisolated(unsafe) static var path: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 4096)

    static func arm(fstab: String) {
        calls.store(0, ordering: .sequentiallyConsistent)
        sent.store(false, ordering: .sequentiallyConsistent)
        sawFsc.store(false, ordering: .sequentiallyConsistent)
        path = strdup(fstab)
    }

    static func handle() {
        calls.add(1, ordering: .sequentiallyConsistent)
        guard let path else { return }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        let n = read(fd, buffer, 4096)
        close(fd)
        guard n > 3 else { return }
        for i in 0..<(n - 3) where buffer[i] == UInt8(ascii: ",") && buffer[i + 1] == UInt8(ascii: "f")
            && buffer[i + 2] == UInt8(ascii: "s") && buffer[i + 3] == UInt8(ascii: "c") {
            sawFsc.store(true, ordering: .sequentiallyConsistent)
        }
    }
}
