import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlMount

/// The unmount / mount again / roll back path of `fsc enable`, for real, on
/// tmpfs inside a private mount namespace:
///   unshare -m --propagation private swift test --scratch-path .build --filter RemountTests
/// tmpfs refuses the `fsc` option (EINVAL), which is exactly a failed mount
/// after the unmount: fstab must come back and the old mount with it.
@Suite(.rootInPrivateMountNamespace, .serialized)
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
            var s = FscSwitch(
                enable: true, mountpoints: [target], force: force, check: check, roots: KernelRoots(etc: dir))
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
        #expect(throws: CachectlError.self) { try Mounter.unmount(bed.target) }
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
        defer {
            kill(sleeper.processIdentifier, SIGKILL)
            sleeper.waitUntilExit()
        }
        let report = try bed.switcher().run()
        let result = try #require(report.mounts.first)
        #expect(result.failed && !result.changed)
        #expect(result.busy.contains { $0.pid == sleeper.processIdentifier && $0.command == "sleep" })
        #expect(result.error?.contains("sleep (pid \(sleeper.processIdentifier))") == true)
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        #expect(bed.mount != nil)
    }

    /// Was a plain failure (exit 1): an rsize over what an NFS client reads per
    /// request is a value this mount cannot take, so a usage error (exit 2).
    @Test func anRsizeOverNFSsLimitIsAUsageErrorAndChangesNothing() throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let before = try #require(bed.mount)
        var switcher = bed.switcher()
        switcher.rsize = ByteSize(2 << 20)
        let report = try switcher.run()
        let result = try #require(report.mounts.first)
        #expect(result.failed && !result.changed)
        #expect(result.errorCode == .usage)
        #expect(
            result.error?.hasPrefix("--rsize: rsize 2.00 MiB is more than an NFS client reads per request") == true,
            "\(result.error ?? "")")
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        #expect(bed.mount?.id == before.id)
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

    /// SIGTERM (what systemd sends on stop or timeout) as soon as fstab has
    /// been renamed, in a child process with the default disposition: the
    /// process must end by that SIGTERM only after the rollback, with fstab
    /// restored and the share mounted again.
    @Test func aSIGTERMRightAfterTheFstabRenameEndsTheProcessOnlyAfterTheRollback() async throws {
        let bed = try Bed()
        defer { bed.tearDown() }
        let dir = bed.dir
        await #expect(processExitsWith: .signal(SIGTERM)) { [dir = dir as String] in
            // Send SIGTERM when fstab is first renamed into place (the fsc entry).
            // inotify queues the event, so a watcher slowed by a loaded machine
            // cannot miss it (polling the file could miss the short window before
            // the rollback); the watch exists before the switch starts.
            let inotify = inotify_init1(Int32(IN_CLOEXEC))
            guard inotify >= 0, inotify_add_watch(inotify, dir, UInt32(IN_MOVED_TO)) >= 0 else { exit(6) }
            let watcher = Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
                    guard count > 0 else { exit(7) }
                    var offset = 0
                    while offset + 16 <= count {  // struct inotify_event: wd, mask, cookie, len, name
                        let length = buffer.withUnsafeBytes {
                            Int($0.load(fromByteOffset: offset + 12, as: UInt32.self))
                        }
                        let name = buffer[(offset + 16)..<min(offset + 16 + length, count)].prefix { $0 != 0 }
                        if String(decoding: name, as: UTF8.self) == "fstab" {
                            kill(getpid(), SIGTERM)
                            return
                        }
                        offset += 16 + length
                    }
                }
            }
            watcher.start()
            var switcher = FscSwitch(enable: true, mountpoints: [dir + "/mnt"], roots: KernelRoots(etc: dir))
            switcher.testFilesystems = ["tmpfs"]
            _ = try? switcher.run()
            var slept = timespec(tv_sec: 5, tv_nsec: 0)
            nanosleep(&slept, nil)
            exit(5)  // no SIGTERM came, or it was lost
        }
        #expect(try String(contentsOfFile: bed.fstab, encoding: .utf8) == bed.fstabText)
        let mount = try #require(bed.mount)
        #expect(!OptionString.contains(mount.superOptions ?? "", "fsc"))
    }
}

/// The hint when the kernel does not follow a remount's fsc setting names the
/// cause that fits what was mounted.
@Suite struct FscStillWrongHintTests {
    @Test func aUniqueTagTheKernelDroppedIsNamed() {
        let hint = FscSwitch.stillWrongHint(enable: true, kind: .nfs, uniqueTag: "cachectl-mnt-b")
        #expect(hint.contains("fsc=cachectl-mnt-b"))
        #expect(hint.contains("Cache volume key already in use"))
        #expect(!hint.contains("CONFIG_NFS_FSCACHE"))
    }

    @Test func withoutATagTheClientsSupportIsSuspected() {
        #expect(FscSwitch.stillWrongHint(enable: true, kind: .cifs, uniqueTag: nil).contains("CONFIG_CIFS_FSCACHE"))
        #expect(FscSwitch.stillWrongHint(enable: false, kind: .nfs, uniqueTag: nil).contains("disable fsc there too"))
    }
}
