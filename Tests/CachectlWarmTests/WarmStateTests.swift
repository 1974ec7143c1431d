import CachectlSystem
import CachectlTestSupport
import CachectlWarm
import Foundation
import Testing

/// warm.json is written in the state files' one style (snake_case keys); the
/// camelCase file earlier versions wrote still reads, names (list keys) unchanged.
@Suite struct WarmStateTests {
    @Test func aFileWithTheOldCamelCaseKeysStillReads() throws {
        let dir = try makeTemporaryDirectory("warm-state")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = WarmStateFile(path: dir + "/warm.json")
        let old = #"""
            {"lists": {"boot_list": {"bytesRead": 10, "files": [{"device": 1, "inode": 2, "mtimeNanoseconds": 3, "path": "/m/a.gguf", "size": 10}],
            "finishedAt": 1700000000.5, "into": "ram", "residencyPercent": 100, "seconds": 1, "throughput": 10, "totalBytes": 10}}}
            """#
        try old.write(toFile: file.path, atomically: false, encoding: .utf8)
        let record = try #require(file.load().lists["boot_list"])
        #expect(
            record.finishedAt == 1_700_000_000.5 && record.bytesRead == 10 && record.files.first?.mtimeNanoseconds == 3)

        try file.record("boot_list", record)
        let text = try String(contentsOfFile: file.path, encoding: .utf8)
        #expect(
            text.contains("\"finished_at\"") && text.contains("\"mtime_nanoseconds\"") && !text.contains("finishedAt"))
        #expect(text.contains("\"boot_list\""))
        #expect(file.load().lists["boot_list"] == record)
    }
}
