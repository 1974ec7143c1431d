import CachectlSystem
import Foundation
import Glibc
import Testing

/// Issue 14, point 4: `residency` streams many files (hand-written JSON, fixed-width
/// table), and every command name resolves as before now that each is spelled out.
@Suite struct ManyFilesCLITests {
    /// A directory of `count` small files in 10 subdirectories, plus awkward names.
    final class Tree {
        let dir: String
        var paths: [String] = []

        init(count: Int) throws {
            dir = "/var/tmp/cachectl-cli-many-\(getpid())-\(UUID().uuidString.prefix(8))"
            for index in 0..<count {
                let sub = dir + "/d\(index % 10)"
                try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
                paths.append(sub + "/f\(String(format: "%05d", index))")
            }
            // Names JSON must escape: quote, backslash, newline, tab, a control byte, non-ASCII.
            for name in ["quote\"d", "back\\slash", "new\nline", "tab\tbed", "bell\u{07}", "grüße ✓"] {
                paths.append(dir + "/d0/" + name)
            }
            for (index, path) in paths.enumerated() {
                let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 4096 + (index % 3) * 4096)
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                #expect(fd >= 0)
                _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        var totalSize: Int { paths.indices.reduce(0) { $0 + 4096 + ($1 % 3) * 4096 } }
    }

    @Test func residencyJSONListsEveryFileInSortedOrderWithEscapedPaths() throws {
        let tree = try Tree(count: 300)
        _ = try CLI.run(["warm", "--quiet", tree.dir])
        let result = try CLI.run(["residency", "--json", tree.dir])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try CLI.json(result)
        let files = try #require(json["files"] as? [[String: Any]])
        // The walk's order: directories by name, entries sorted bytewise within each.
        let expected = FileSelectionOrder.sorted(tree.paths, under: tree.dir)
        #expect(files.map { $0["path"] as? String } == expected)
        #expect(files.allSatisfy { $0["percent"] as? Double == 100 && $0["method"] as? String != nil })
        #expect(files.allSatisfy { ($0["resident"] as? Int) == ($0["size"] as? Int) })
        #expect(json["failed"] as? Bool == false)
        #expect(json["changed"] as? Bool == false)
        #expect((json["problems"] as? [Any])?.isEmpty == true)
        let total = try #require(json["total"] as? [String: Any])
        #expect(total["files"] as? Int == tree.paths.count)
        #expect(total["size"] as? Int == tree.totalSize)
        #expect(total["resident"] as? Int == tree.totalSize)
        #expect(total["percent"] as? Double == 100)
        #expect(
            json["msg"] as? String
                == "\(tree.paths.count) files: \(ByteSize.format(UInt64(tree.totalSize))) of \(ByteSize.format(UInt64(tree.totalSize))) resident (100.0%)"
        )
    }

    @Test func residencyOfAColdTreeCountsNothingResident() throws {
        let tree = try Tree(count: 40)
        _ = try CLI.run(["evict", "--quiet", tree.dir])
        let json = try CLI.json(try CLI.run(["residency", "--json", tree.dir]))
        let files = try #require(json["files"] as? [[String: Any]])
        #expect(files.count == tree.paths.count)
        #expect(files.allSatisfy { $0["resident"] as? Int == 0 && $0["percent"] as? Double == 0 })
        #expect((json["total"] as? [String: Any])?["percent"] as? Double == 0)
    }

    @Test func residencyTableHasOneRowPerFileAndATotal() throws {
        let tree = try Tree(count: 25)
        _ = try CLI.run(["evict", "--quiet", tree.dir])
        _ = try CLI.run(["warm", "--quiet", tree.dir + "/d1"])
        let result = try CLI.run(["residency", tree.dir + "/d1", tree.dir + "/d2"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.first == " RESIDENT       SIZE  PERCENT  FILE")
        #expect(lines.count == 1 + 3 + 3 + 1)  // header, d1's and d2's files (1, 11, 21; 2, 12, 22), total
        let d1 = lines.filter { $0.hasSuffix(tree.dir + "/d1/f00001") }
        #expect(d1.count == 1)
        #expect(d1.first?.hasPrefix(" 8.00 KiB   8.00 KiB   100.0%  ") == true)
        // d1 resident (8 + 12 + 4 KiB), d2 not (12 + 4 + 8 KiB).
        #expect(lines.last == " 24.0 KiB   48.0 KiB    50.0%  total (6 files)")
    }

    @Test func aMissingPathIsAProblemInTheJSONAndExitsOne() throws {
        let tree = try Tree(count: 3)
        let missing = tree.dir + "/missing \"x\""
        let result = try CLI.run(["residency", "--json", missing, tree.dir])
        #expect(result.status == 1)
        #expect(result.stderr.contains(missing))
        let json = try CLI.json(result)
        #expect(json["failed"] as? Bool == true)
        #expect((json["files"] as? [Any])?.count == tree.paths.count)
        let problems = try #require(json["problems"] as? [[String: Any]])
        #expect(problems.count == 1)
        #expect(problems.first?["path"] as? String == missing)
        #expect((problems.first?["error"] as? String)?.contains("no such file") == true)
    }

    @Test func aSpecialFileInADirectoryIsSkippedWithoutBlocking() throws {
        let tree = try Tree(count: 2)
        mkfifo(tree.dir + "/d0/pipe", 0o644)
        let result = try CLI.run(["residency", "--json", tree.dir])
        #expect(result.status == 0)
        #expect(result.stderr.contains("pipe: is a FIFO; skipped"))
        #expect((try CLI.json(result)["files"] as? [Any])?.count == tree.paths.count)
    }

    /// Every command is named in its configuration (so argument-parser never derives
    /// a name from the type at start-up); the names are the ones it derived before.
    @Test(arguments: [
        ["warm"], ["residency"], ["evict"], ["cache"], ["cache", "setup"], ["cache", "status"], ["cache", "supervise"],
        ["mounts"],
        ["fsc"], ["fsc", "enable"], ["fsc", "disable"], ["doctor"], ["tier"], ["tier", "create"], ["tier", "list"],
        ["tier", "resize"], ["tier", "destroy"], ["tier", "health"], ["models"], ["promote"], ["demote"],
        ["fuse"], ["fuse", "mount"], ["fuse", "stats"], ["fuse", "unmount"], ["nvmet"], ["nvmet", "export"],
        ["nvmet", "list"], ["nvmet", "unexport"], ["nvmet", "save"], ["nvmet", "restore"], ["nvmet", "connect"],
        ["nvmet", "disconnect"], ["apply"], ["plan"], ["status"], ["install-units"], ["serve"],
    ])
    func everyCommandNameResolves(_ command: [String]) throws {
        let result = try CLI.run(["help"] + command)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("USAGE: cachectl " + command.joined(separator: " ")))
    }

    @Test func versionIsPrintedFromTheConfiguration() throws {
        let result = try CLI.run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout == "0.1.0\n")
        #expect(result.stderr.isEmpty)
    }
}

/// The order `cachectl residency DIR` lists files in: depth-first, each directory's
/// entries sorted by name.
enum FileSelectionOrder {
    static func sorted(_ paths: [String], under root: String) -> [String] {
        paths.sorted { a, b in
            let x = a.dropFirst(root.count + 1).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            let y = b.dropFirst(root.count + 1).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            return x.lexicographicallyPrecedes(y)
        }
    }
}
