import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlNVMeOF

/// `nvmet restore` against a fixture configfs tree (plain directories, so an
/// attribute write fails as it would on a kernel that lacks it) with real tmpfs
/// mounts for the RAM backing. Root, private mount namespace.
@Suite(.serialized, .rootInPrivateMountNamespace)
struct RestoreHardeningTests {
    final class Fixture {
        let root: String
        var configfs: String { root + "/config" }
        /// A live tier lives here, beside the backing directory (as /run/cachectl/tiers
        /// sits beside /run/cachectl/nvmet).
        var run: String { root + "/run" }
        var backing: String { run + "/nvmet" }
        var target: NVMeTarget { NVMeTarget(roots: KernelRoots(configfs: configfs), backingRoot: backing) }

        init() throws {
            root = try makeTemporaryDirectory("nvmet-test")
            for dir in ["hosts", "ports", "subsystems", "subsystems/lend/namespaces", "subsystems/lend/allowed_hosts"] {
                try Path.makeDirectory(configfs + "/nvmet/" + dir)
            }
            try Path.makeDirectory(run)
            try Mounter.mount(source: "cachectl-fast", target: run, fstype: "tmpfs", flags: 0, data: "size=4m")
            try Path.makeDirectory(backing)
            _ = try AtomicFile.write("placed model\n", to: run + "/model.gguf")
        }

        func config(devicePath: String) throws -> NvmetConfig {
            try NvmetConfig(
                jsonBytes: Array(
                    #"{"subsystems":[{"nqn":"lend","namespaces":[{"nsid":1,"device":{"path":"\#(devicePath)"}}]}]}"#
                        .utf8))
        }

        /// Every mount under the fixture, top last.
        var mounts: [String] {
            ((try? MountTable.mounted()) ?? []).filter { $0.target.hasPrefix(root) }.map { "\($0.source) \($0.target)" }
        }

        deinit {
            for entry in ((try? MountTable.mounted()) ?? []).reversed() where entry.target.hasPrefix(root) {
                umount2(entry.target, Int32(MNT_DETACH))
            }
            _ = try? ExternalCommand(["rm", "-rf", "--one-file-system", root]).run()
        }
    }

    @Test(
        "a backing path with '..' or not of cachectl's form is refused before any write",
        arguments: [
            "/nvmet/../ram-1048576.img", "/nvmet/lend/../ram-1048576.img", "/nvmet/ram-1048576.img",
            "/nvmet/a/b/ram-1048576.img",
            "/nvmet/lend/./ram-1048576.img",
        ])
    func badBackingPaths(suffix: String) throws {
        let fx = try Fixture()
        let before = fx.mounts
        let path = fx.run + suffix
        #expect { try fx.target.restore(try fx.config(devicePath: path)) } throws: {
            ($0 as? CachectlError)?.code == .usage
        }
        #expect(fx.mounts == before)
        #expect(try Path.entries(of: fx.configfs + "/nvmet/subsystems/lend/namespaces") == [])
        #expect(try AtomicFile.readText(fx.run + "/model.gguf") == "placed model\n")
    }

    @Test("a failed restore unmounts only the backing it mounted and says nothing changed")
    func rollbackUnmountsOnlyItsOwn() throws {
        let fx = try Fixture()
        let before = fx.mounts
        let path = fx.backing + "/lend/ram-1048576.img"
        do {
            _ = try fx.target.restore(try fx.config(devicePath: path))
            Issue.record("restore succeeded on a fixture without device_path")
        } catch let failure as ChangeFailure {
            #expect(failure.changed == false)
            #expect(failure.steps.contains { $0.hasPrefix("mount tmpfs") })
        }
        #expect(fx.mounts == before)
        #expect(try AtomicFile.readText(fx.run + "/model.gguf") == "placed model\n")
        #expect(try Path.entries(of: fx.backing) == [])
        #expect(try Path.entries(of: fx.configfs + "/nvmet/subsystems/lend/namespaces") == [])
    }

    /// The rollback unmounts a backing tmpfs by its mount ID: when something else
    /// was mounted over it since, that is left alone and the step reported not undone.
    @Test("the rollback never unmounts a mount it did not make")
    func rollbackLeavesAMountMadeSince() throws {
        let fx = try Fixture()
        let backing = RAMBacking(backingRoot: fx.backing, name: "lend", size: 1 << 20)
        let log = ChangeLog(check: false)
        try backing.ensure(roots: .system, log: log)
        #expect(fx.mounts.contains("cachectl-nvmet \(backing.directory)"))
        try Mounter.mount(source: "someone-else", target: backing.directory, fstype: "tmpfs", flags: 0, data: "size=1m")
        log.rollBack()
        #expect(fx.mounts.last == "someone-else \(backing.directory)")
        #expect(log.notUndone.count == 1 && log.changedAfterRollback)
    }

    @Test("a failed restore that removed something reports changed")
    func rollbackReportsWhatStaysChanged() throws {
        let fx = try Fixture()
        try Path.makeDirectory(fx.configfs + "/nvmet/hosts/nqn.2014-08.org.cachectl:old")
        do {
            _ = try fx.target.restore(try fx.config(devicePath: fx.backing + "/lend/ram-1048576.img"), replace: true)
            Issue.record("restore succeeded on a fixture without device_path")
        } catch let failure as ChangeFailure {
            #expect(failure.changed)  // the host it removed is not coming back
            #expect(failure.description.contains("still changed"))
        }
        #expect(!Configfs_isDirectory(fx.configfs + "/nvmet/hosts/nqn.2014-08.org.cachectl:old"))
    }
}

private func Configfs_isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
}
