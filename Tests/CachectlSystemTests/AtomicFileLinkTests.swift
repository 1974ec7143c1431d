import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

/// Config paths that are symlinks, and backups that must not widen access.
@Suite final class AtomicFileLinkTests {
    let dir: String

    init() throws {
        dir = try makeTemporaryDirectory("atomic-link")
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func status(_ path: String) -> stat {
        var st = stat()
        lstat(path, &st)
        return st
    }

    @Test func aSymlinkedConfigIsWrittenInPlaceAndStaysALink() throws {
        let real = dir + "/data/fstab"
        try "old\n".write(toFile: real, atomically: false, encoding: .utf8)
        chmod(real, 0o640)
        // Relative link, through a second link: /etc/fstab → ../data/fstab-link → fstab
        symlink("fstab", dir + "/data/fstab-link")
        symlink("../data/fstab-link", dir + "/etc/fstab")
        #expect(try AtomicFile.write("new\n", to: dir + "/etc/fstab", backup: true))
        #expect(status(dir + "/etc/fstab").st_mode & S_IFMT == S_IFLNK)
        #expect(status(dir + "/data/fstab-link").st_mode & S_IFMT == S_IFLNK)
        #expect(try String(contentsOfFile: real, encoding: .utf8) == "new\n")
        #expect(status(real).st_mode & 0o7777 == 0o640)
        // The backup sits beside the path named, as a regular file with the old contents.
        let backup = dir + "/etc/fstab" + AtomicFile.backupSuffix
        #expect(status(backup).st_mode & S_IFMT == S_IFREG)
        #expect(try String(contentsOfFile: backup, encoding: .utf8) == "old\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/data").sorted() == ["fstab", "fstab-link"])
    }

    @Test func aDanglingLinkCreatesItsTarget() throws {
        symlink(dir + "/data/new.conf", dir + "/etc/new.conf")
        #expect(try AtomicFile.write("x\n", to: dir + "/etc/new.conf", mode: 0o600))
        #expect(status(dir + "/etc/new.conf").st_mode & S_IFMT == S_IFLNK)
        #expect(try String(contentsOfFile: dir + "/data/new.conf", encoding: .utf8) == "x\n")
    }

    @Test(.enabled(if: Privileges.isRoot, "needs root to own a link as another user"))
    func aLinkOwnedByAnotherUserIsRefused() throws {
        try "secret\n".write(toFile: dir + "/data/shadow", atomically: false, encoding: .utf8)
        symlink(dir + "/data/shadow", dir + "/etc/conf")
        lchown(dir + "/etc/conf", 65534, 65534)
        #expect(throws: CachectlError.self) { try AtomicFile.write("x\n", to: dir + "/etc/conf") }
        #expect(try String(contentsOfFile: dir + "/data/shadow", encoding: .utf8) == "secret\n")
    }

    @Test(.enabled(if: Privileges.isRoot, "needs root to chown"))
    func backupsKeepTheOwnerAndAreNeverWiderThanTheOwnersBits() throws {
        let path = dir + "/etc/fstab"
        let backup = path + AtomicFile.backupSuffix
        try "password=s3cret\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o600)
        chown(path, 65534, 65534)
        // A stale, world-readable backup from before must not keep its mode.
        try "stale\n".write(toFile: backup, atomically: false, encoding: .utf8)
        chmod(backup, 0o644)
        try AtomicFile.write("password=new\n", to: path, backup: true)
        #expect(status(backup).st_mode & 0o7777 == 0o600)
        #expect(status(backup).st_uid == 65534 && status(backup).st_gid == 65534)
        #expect(try String(contentsOfFile: backup, encoding: .utf8) == "password=s3cret\n")
        #expect(status(path).st_mode & 0o7777 == 0o600 && status(path).st_uid == 65534)

        // A 0644 source (fstab's usual mode) still gets a backup only its owner reads.
        chmod(path, 0o644)
        try AtomicFile.write("password=newer\n", to: path, backup: true)
        #expect(status(backup).st_mode & 0o7777 == 0o600)
        #expect(status(path).st_mode & 0o7777 == 0o644)
    }
}
