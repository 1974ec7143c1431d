import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

/// Two processes of the built binary at once, and refusals as the shell sees
/// them. Root, in a private mount namespace (tmpfs tiers are mounted).
@Suite(.serialized, .rootInPrivateMountNamespace)
struct ApplyHardeningTests {
    final class Tree {
        let root: String
        init() throws {
            root = try makeTemporaryDirectory("apply-cli", in: "/var/tmp")
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

    /// The plan check used to run outside the lock: the second apply saw the first
    /// one's tmpfs mounted but not yet recorded and failed EBUSY.
    @Test func twoAppliesAtOnceBothSucceed() throws {
        let tree = try Tree()
        for round in 0..<8 {
            let yaml = tree.root + "/cachectl-\(round).yaml"
            let tiers = (0..<8).map {
                "  - name: t\(round)x\($0)\n    type: tmpfs\n    size: 16M\n    path: \(tree.root)/tiers/r\(round)/t\($0)\n"
            }
            _ = try AtomicFile.write("tiers:\n" + tiers.joined(), to: yaml)
            let arguments = [
                "apply", "-f", yaml, "--state", tree.root + "/state/tiers.json", "--warm-state",
                tree.root + "/state/warm.json", "--json",
            ]
            let results = ResultBox()
            DispatchQueue.concurrentPerform(iterations: 2) { index in
                let result = try? CLI.run(arguments)
                results.set(index, result)
            }
            for index in 0..<2 {
                let result = try #require(results.get(index))
                #expect(result.status == 0, "round \(round), apply \(index): \(result.stderr) \(result.stdout)")
            }
            for t in 0..<8 {
                let path = "\(tree.root)/tiers/r\(round)/t\(t)"
                let mounts = try AtomicFile.readText("/proc/self/mountinfo").split(separator: "\n")
                    .filter { $0.split(separator: " ")[4] == path }
                #expect(mounts.count == 1, "\(path) mounted \(mounts.count) times")
            }
        }
    }

    /// apply killed between the tmpfs mount and the state save: the rerun used to
    /// fail EBUSY "already mounted there" until someone unmounted by hand.
    @Test func applyAfterAKillBetweenMountAndSaveConverges() throws {
        let tree = try Tree()
        let path = tree.root + "/tiers/fast"
        try Path.makeDirectory(path)
        _ = try AtomicFile.write(
            "tiers:\n  - name: fast\n    type: tmpfs\n    size: 16M\n    path: \(path)\n", to: tree.root + "/c.yaml")
        // What the killed run had done: the tmpfs mounted as cachectl mounts it, no state saved.
        #expect(
            mount("cachectl-fast", path, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOATIME), "size=16777216,mode=0755")
                == 0)
        let arguments = [
            "apply", "-f", tree.root + "/c.yaml", "--state", tree.root + "/state/tiers.json",
            "--warm-state", tree.root + "/state/warm.json", "--json",
        ]
        let first = try CLI.run(arguments)
        #expect(first.status == 0, "\(first.stderr) \(first.stdout)")
        #expect(first.stdout.contains("adopt tmpfs cachectl-fast already mounted"))
        let second = try CLI.run(arguments)
        #expect(second.status == 0)
        #expect(try CLI.json(second)["changed"] as? Bool == false)
        let mounts = try AtomicFile.readText("/proc/self/mountinfo").split(separator: "\n").filter {
            $0.split(separator: " ")[4] == path
        }
        #expect(mounts.count == 1)
    }

    @Test func tierCreateOverAPopulatedDirectoryExitsWithTheReason() throws {
        let tree = try Tree()
        let path = tree.root + "/doc"
        try Path.makeDirectory(path)
        _ = try AtomicFile.write("x\n", to: path + "/changelog.gz")
        let result = try CLI.run([
            "tier", "create", "doc", "--type", "tmpfs", "--size", "16M", "--path", path, "--state",
            tree.root + "/tiers.json",
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("changelog.gz") && result.stderr.contains("hide"))
        #expect(try AtomicFile.readText("/proc/self/mountinfo").contains(" \(path) ") == false)
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Int: ExternalCommand.Result] = [:]
    func set(_ index: Int, _ result: ExternalCommand.Result?) { lock.withLock { results[index] = result } }
    func get(_ index: Int) -> ExternalCommand.Result? { lock.withLock { results[index] } }
}
