import CachectlPlan
import CachectlSystem
import CachectlTestSupport
import CachectlTiers
import CachectlWarm
import Foundation
import Glibc
import Testing

/// A scratch tree laid out like a machine: a cold store, a models dir, the
/// state files and the cachefilesd config all inside it. Unmounts what it mounted.
final class Machine {
    let root: String
    var cold: String { root + "/cold" }
    var models: String { root + "/models" }
    var conf: String { root + "/etc/cachefilesd.conf" }
    var cacheDir: String { root + "/fscache" }

    init() throws {
        root = try makeTemporaryDirectory("apply-test", in: "/var/tmp")
        for dir in [cold, root + "/etc", root + "/state", root + "/proc"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    func write(_ relative: String, mib: Int) throws {
        var bytes = [UInt8](repeating: 0, count: mib << 20)
        for i in stride(from: 0, to: bytes.count, by: 512) { bytes[i] = UInt8(truncatingIfNeeded: i / 512 &* 31) }
        try AtomicFile.write(bytes, to: cold + "/" + relative)
        // Out of the page cache, so warming has something to read.
        let file = try OpenFile(cold + "/" + relative)
        _ = fdatasync(file.fd)
        try file.advise(POSIX_FADV_DONTNEED)
    }

    var environment: PlanEnvironment {
        // manageCacheDaemon off: the host's cachefilesd is never started or stopped.
        PlanEnvironment(
            cachefilesdConfigPath: conf, manageCacheDaemon: false,
            tierState: TierStateFile(path: root + "/state/tiers.json"),
            warmState: WarmStateFile(path: root + "/state/warm.json"))
    }

    func engine(_ yaml: String, filter: ActionFilter = .all) throws -> Engine {
        let file = try ConfigFile.parse(yaml, file: root + "/cachectl.yaml")
        return Engine(config: file.config, file: root + "/cachectl.yaml", environment: environment, filter: filter)
    }

    /// Every file, directory and link under the tree: inode, mode, size, mtime
    /// and ctime (ctime moves on any change, xattrs included), and the mounts.
    func snapshot() -> [String] {
        var entries: [String] = []
        func walk(_ path: String) {
            var st = stat()
            guard lstat(path, &st) == 0 else { return }
            entries.append(
                "\(path) ino=\(st.st_ino) mode=\(st.st_mode) size=\(st.st_size) mtime=\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) ctime=\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
            )
            if st.st_mode & S_IFMT == S_IFDIR, let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
                for name in names.sorted() { walk(path + "/" + name) }
            }
        }
        walk(root)
        let mounts =
            (try? AtomicFile.readText("/proc/self/mountinfo"))?.split(separator: "\n").filter { $0.contains(root) }.map(
                String.init) ?? []
        return entries + mounts
    }

    deinit {
        if let text = try? AtomicFile.readText("/proc/self/mountinfo") {
            for line in text.split(separator: "\n").reversed() {
                let fields = line.split(separator: " ")
                if fields.count > 4, fields[4].hasPrefix(root) { umount2(String(fields[4]), Int32(MNT_DETACH)) }
            }
        }
        _ = try? ExternalCommand(["rm", "-rf", "--one-file-system", root]).run()
    }
}

@Suite struct PlanTests {
    /// Needs no privileges: the cache section against files in a scratch tree.
    @Test func cacheConfigIsWrittenOnceAndASecondApplyTouchesNothing() throws {
        let machine = try Machine()
        let yaml = "cache:\n  dir: \(machine.cacheDir)\n  tag: models\n"
        let plan = try machine.engine(yaml).plan()
        #expect(plan.changed && !plan.failed)
        #expect(plan.actions.map(\.status) == [.pending])
        #expect(plan.actions[0].diff?.contains("+tag models") == true)
        #expect(!FileManager.default.fileExists(atPath: machine.conf), "plan wrote the config")
        #expect(!FileManager.default.fileExists(atPath: machine.cacheDir), "plan made the cache dir")

        let first = try machine.engine(yaml).apply()
        #expect(first.changed && !first.failed, "\(first.actions)")
        #expect(first.actions[0].status == .done)
        #expect(try AtomicFile.readText(machine.conf).contains("dir \(machine.cacheDir)"))

        let before = machine.snapshot()
        let second = try machine.engine(yaml).apply()
        #expect(!second.changed && !second.failed)
        #expect(second.actions.map(\.status) == [.unchanged])
        #expect(machine.snapshot() == before)

        // A change to the file is planned with its diff and written with a backup.
        let changed = try machine.engine(yaml + "  brun: 20\n  bcull: 15\n  bstop: 10\n").apply()
        #expect(changed.actions[0].status == .done)
        #expect(changed.actions[0].diff?.contains("+brun 20%") == true)
        #expect(FileManager.default.fileExists(atPath: machine.conf + AtomicFile.backupSuffix))
    }

    @Test func aModelMissingFromTheColdStoreFailsThePlanAndNothingIsChanged() throws {
        let machine = try Machine()
        try machine.write("a.gguf", mib: 1)
        let yaml = """
            cache:
              dir: \(machine.cacheDir)
            models:
              dir: \(machine.models)
              cold_store: \(machine.cold)
            warm:
              - name: boot
                models: [nosuch.gguf]
            """
        let before = machine.snapshot()
        let report = try machine.engine(yaml).apply()
        #expect(report.failed && !report.changed)
        #expect(report.actions.map(\.status) == [.skipped, .skipped, .failed], "\(report.actions)")
        #expect(report.actions[2].error?.contains("no model nosuch.gguf") == true)
        #expect(machine.snapshot() == before, "a failed plan must change nothing")
    }

    @Test func onlyRunsTheNamedWarmListEvenWhenItIsNotOnApply() throws {
        let machine = try Machine()
        try machine.write("a.bin", mib: 2)
        let yaml = """
            warm:
              - name: nightly
                files: [\(machine.cold)/a.bin]
                on_apply: false
            """
        #expect(try machine.engine(yaml).plan().actions.isEmpty)
        let only = try machine.engine(yaml, filter: ActionFilter(parsing: ["warm:nightly"])).apply()
        #expect(only.actions.map(\.id) == ["warm nightly"])
        #expect(only.actions[0].status == .done)
        let record = try #require(machine.environment.warmState.load().lists["nightly"])
        #expect(record.totalBytes == 2 << 20)
        #expect(record.throughput > 0)
    }

    @Test func warmIntoDiskIsRecordedSoTheSecondApplyReadsNothing() throws {
        let machine = try Machine()
        try machine.write("a.bin", mib: 2)
        let yaml = "warm:\n  - name: stage\n    into: disk\n    files: [\(machine.cold)/a.bin]\n"
        #expect(try machine.engine(yaml).apply().actions[0].status == .done)
        let second = try machine.engine(yaml).apply()
        #expect(second.actions[0].status == .unchanged)
        // The file changes: it is read again.
        try machine.write("a.bin", mib: 3)
        #expect(try machine.engine(yaml).plan().actions[0].status == .pending)
    }
}

/// Real tmpfs tiers and real placement: root in a private mount namespace
/// (`unshare -m --propagation private swift test --filter ApplyKernelTests`).
@Suite(.rootInPrivateMountNamespace, .serialized)
struct ApplyKernelTests {
    func yaml(_ machine: Machine, tierPath: String? = nil) -> String {
        """
        cache:
          dir: \(machine.cacheDir)
          tag: models
        tiers:
          - name: fast
            type: tmpfs
            size: 64M
            path: \(tierPath ?? machine.root + "/tiers/fast")
        models:
          dir: \(machine.models)
          cold_store: \(machine.cold)
          pinned:
            tiny.gguf: fast
        warm:
          - name: boot
            models: [tiny.gguf]
          - name: extra
            files: [\(machine.cold)/extra.bin]
        """
    }

    @Test func applyRunsInDependencyOrderAndTheSecondApplyChangesNothing() throws {
        let machine = try Machine()
        try machine.write("tiny.gguf", mib: 4)
        try machine.write("extra.bin", mib: 8)
        let yaml = yaml(machine)

        let plan = try machine.engine(yaml).plan()
        #expect(
            plan.actions.map(\.id) == [
                "cache \(machine.cacheDir)", "tier fast", "models \(machine.models)", "placement tiny.gguf",
                "warm boot", "warm extra",
            ])
        #expect(
            plan.actions.map(\.status) == [.pending, .pending, .pending, .pending, .pending, .pending],
            "\(plan.actions)")
        #expect(plan.actions[3].notes.first?.contains("cannot be checked before the earlier steps") == true)
        // Planned from the cold store while the links do not exist yet.
        #expect(plan.actions[4].before == "0 B of 4.00 MiB resident")

        let first = try machine.engine(yaml).apply()
        #expect(first.changed && !first.failed, "\(first.actions)")
        #expect(first.actions.map(\.status) == [.done, .done, .done, .done, .unchanged, .done], "\(first.actions)")
        // The pinned model is in the tier and its link points there.
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: machine.models + "/tiny.gguf")
        #expect(link == machine.root + "/tiers/fast/tiny.gguf")
        #expect(first.actions[3].after == "in tier fast (pinned)")
        // tiny.gguf is on tmpfs (always resident): warm boot had nothing to read.
        #expect(first.actions[4].before == "4.00 MiB of 4.00 MiB resident")

        // Second apply: changed false, and the tree (inodes, mtimes, ctimes) and mounts are untouched.
        let before = machine.snapshot()
        let second = try machine.engine(yaml).apply()
        #expect(!second.changed && !second.failed)
        #expect(second.actions.allSatisfy { $0.status == .unchanged }, "\(second.actions)")
        #expect(machine.snapshot() == before)

        // --check of a changed file changes nothing either.
        let check = try machine.engine(yaml.replacingOccurrences(of: "size: 64M", with: "size: 96M")).plan()
        #expect(check.actions[1].status == .pending)
        // The steps a real run takes, none taken.
        #expect(
            check.actions[1].steps == [
                "size 64.0 MiB → 96.0 MiB", "remount tmpfs on \(machine.root)/tiers/fast with size 96.0 MiB",
            ])
        #expect(machine.snapshot() == before)

        // state: absent demotes the model and removes the tier.
        let absent = yaml.replacingOccurrences(
            of: "path: \(machine.root)/tiers/fast", with: "path: \(machine.root)/tiers/fast\n    state: absent"
        )
        .replacingOccurrences(of: "  pinned:\n    tiny.gguf: fast\n", with: "")
        let removed = try machine.engine(absent).apply()
        #expect(removed.actions.first { $0.kind == .tier }?.status == .done, "\(removed.actions)")
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: machine.models + "/tiny.gguf") == machine.cold
                + "/tiny.gguf")
        #expect(!(try AtomicFile.readText("/proc/self/mountinfo")).contains(machine.root + "/tiers/fast"))
    }

    @Test func aFailingStepStopsApplyIsRolledBackAndTheRestIsSkipped() throws {
        let machine = try Machine()
        try machine.write("tiny.gguf", mib: 1)
        try machine.write("extra.bin", mib: 1)
        // A regular file where the tier's parent directory should be: planning
        // cannot see it (nothing is mounted there), mkdir fails when applying.
        try AtomicFile.write("not a directory\n", to: machine.root + "/blocker")
        let report = try machine.engine(yaml(machine, tierPath: machine.root + "/blocker/fast")).apply()
        #expect(report.failed)
        #expect(
            report.actions.map(\.status) == [.done, .failed, .skipped, .skipped, .skipped, .skipped],
            "\(report.actions)")
        #expect(report.actions[1].error?.contains("ENOTDIR") == true, "\(report.actions[1])")
        #expect(report.actions[1].rollback != nil)
        #expect(report.summary.hasPrefix("failed at tier fast"))
        // Nothing of the tier is left: not in the state, not mounted.
        #expect(try TierStateFile(path: machine.root + "/state/tiers.json").load().tiers.isEmpty)
        #expect(!(try AtomicFile.readText("/proc/self/mountinfo")).contains(machine.root + "/blocker"))
        #expect(!FileManager.default.fileExists(atPath: machine.models), "models setup ran after the failure")
    }
}
