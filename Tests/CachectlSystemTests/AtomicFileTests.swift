import CachectlSystem
import Foundation
import Glibc
import Testing

/// Each test gets its own directory, removed after it (a class, for deinit).
@Suite final class AtomicFileTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "cachectl-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @Test func writesNewFileWithMode() throws {
        let path = dir + "/conf"
        #expect(try AtomicFile.write("a\n", to: path, mode: 0o600))
        #expect(try AtomicFile.readText(path) == "a\n")
        var st = stat()
        stat(path, &st)
        #expect(st.st_mode & 0o777 == 0o600)
    }

    @Test func unchangedContentIsNotWritten() throws {
        let path = dir + "/conf"
        try AtomicFile.write("same\n", to: path)
        var before = stat()
        stat(path, &before)
        #expect(try AtomicFile.write("same\n", to: path) == false)
        var after = stat()
        stat(path, &after)
        #expect(before.st_ino == after.st_ino)
    }

    @Test func replacingKeepsBackupAndMode() throws {
        let path = dir + "/conf"
        try AtomicFile.write("old\n", to: path, mode: 0o640)
        #expect(try AtomicFile.write("new\n", to: path, backup: true))
        #expect(try AtomicFile.readText(path) == "new\n")
        #expect(try AtomicFile.readText(path + AtomicFile.backupSuffix) == "old\n")
        var st = stat()
        stat(path, &st)
        #expect(st.st_mode & 0o777 == 0o640)
        // No temp file left behind.
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(entries.sorted() == ["conf", "conf" + AtomicFile.backupSuffix])
    }

    @Test func missingDirectoryIsAnErrorNamingThePath() throws {
        let path = dir + "/no/such/conf"
        #expect {
            try AtomicFile.write("x", to: path)
        } throws: { error in
            let e = error as? CachectlError
            return e?.errno == ENOENT && e?.description.contains(dir + "/no/such") == true
        }
    }
}
