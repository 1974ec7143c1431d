import CachectlSystem
import Foundation
import Testing

@testable import CachectlFSCache

/// `CacheSetup` writing files for real (the daemon part runs in the VM scenarios).
@Suite struct CacheSetupTests {
    func setup(_ dir: String, check: Bool = false, change: (inout CachefilesdConfig) -> Void = { _ in }) -> CacheSetup {
        var config = CachefilesdConfig()
        config.dir = dir + "/cache"
        change(&config)
        return CacheSetup(config: config, configPath: dir + "/cachefilesd.conf", check: check, manageDaemon: false)
    }

    @Test func writesOnceThenReportsUnchanged() throws {
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let first = try setup(dir).run()
        #expect(first.changed && first.configChanged && first.createdDir)
        #expect(first.diff.contains("+dir \(dir)/cache"))
        #expect(first.findings.contains { $0.check == "user xattrs" && $0.severity == .ok })
        let written = try String(contentsOfFile: dir + "/cachefilesd.conf", encoding: .utf8)
        #expect(CachefilesdConfig.parse(written).dir == dir + "/cache")
        let second = try setup(dir).run()
        #expect(!second.changed && !second.configChanged && second.diff.isEmpty)
        // A change keeps the old file as the backup.
        let third = try setup(dir) { $0.brun = 20 }.run()
        #expect(third.changed && third.diff.contains("-brun 10%\n+brun 20%"))
        #expect(try String(contentsOfFile: dir + "/cachefilesd.conf.cachectl.bak", encoding: .utf8) == written)
    }

    @Test func checkAndBadValuesWriteNothing() throws {
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let checked = try setup(dir, check: true).run()
        #expect(checked.changed && checked.actions.contains { $0.hasPrefix("write ") })
        #expect(!FileManager.default.fileExists(atPath: dir + "/cachefilesd.conf"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/cache"))
        #expect(throws: CachectlError.self) { try setup(dir) { $0.bstop = 8 }.run() }
        #expect(!FileManager.default.fileExists(atPath: dir + "/cachefilesd.conf"))
    }

    @Test func checkingAnExistingCacheDirLeavesItUntouched() throws {
        // The user-xattr probe only reads: the directory's ctime (which any
        // setxattr would bump) stays as it was.
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/cache", withIntermediateDirectories: false)
        var before = stat()
        #expect(stat(dir + "/cache", &before) == 0)
        usleep(20_000)
        let checked = try setup(dir, check: true).run()
        #expect(checked.findings.contains { $0.check == "user xattrs" && $0.severity == .ok })
        var after = stat()
        #expect(stat(dir + "/cache", &after) == 0)
        #expect(after.st_ctim.tv_sec == before.st_ctim.tv_sec && after.st_ctim.tv_nsec == before.st_ctim.tv_nsec)
    }

    @Test func refusesACacheDirOnProcfs() throws {
        // /proc refuses user xattrs: setup must stop before writing.
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        var config = CachefilesdConfig()
        config.dir = "/proc/self"
        let setup = CacheSetup(config: config, configPath: dir + "/c.conf", manageDaemon: false)
        #expect(throws: CacheSetup.Refused.self) { try setup.run() }
        #expect(!FileManager.default.fileExists(atPath: dir + "/c.conf"))
    }
}

/// cachefilesd.service where the package ships only a SysV script (Debian,
/// Ubuntu): cachectl writes its own unit, once, and leaves any other unit alone.
@Suite struct CachefilesdUnitTests {
    /// A fake root: etc/init.d/cachefilesd (the SysV script), sbin with executables, a unit dir.
    func root(sysv: Bool = true) throws -> String {
        let dir = temporaryDirectory()
        for sub in ["etc/init.d", "etc/systemd/system/multi-user.target.wants", "sbin", "lib/systemd/system"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        if sysv { try AtomicFile.write("#!/bin/sh\n", to: dir + "/etc/init.d/cachefilesd", mode: 0o755) }
        for tool in ["cachefilesd", "modprobe"] {
            try AtomicFile.write("#!/bin/sh\n", to: "\(dir)/sbin/\(tool)", mode: 0o755)
        }
        return dir
    }

    func needed(_ dir: String) throws -> CachefilesdUnit? {
        try CachefilesdUnit.needed(
            configPath: "/etc/cachefilesd.conf", etc: dir + "/etc", unitDirs: [dir + "/lib/systemd/system"],
            sbin: [dir + "/sbin"])
    }

    @Test func aSysVOnlySystemGetsAForkingUnitOrderedBeforeRemoteMounts() throws {
        let dir = try root()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        let unit = try #require(try needed(dir))
        #expect(unit.path == dir + "/etc/systemd/system/cachefilesd.service" && unit.old == nil)
        let lines = Set(unit.text.split(separator: "\n").map(String.init))
        #expect(unit.text.hasPrefix(CachefilesdUnit.marker))
        for line in [
            "Type=forking", "PIDFile=/run/cachefilesd.pid", "Restart=on-abnormal",
            "Before=remote-fs-pre.target shutdown.target",
            "ExecStart=\(dir)/sbin/cachefilesd -f /etc/cachefilesd.conf -p /run/cachefilesd.pid",
            "ExecStartPre=-\(dir)/sbin/modprobe -q cachefiles", "WantedBy=multi-user.target",
        ] { #expect(lines.contains(line), "\(line)") }
        #expect(!unit.text.contains("{{"))
        // Written, it is current: nothing more to do.
        try AtomicFile.write(unit.text, to: unit.path, mode: 0o644)
        #expect(try needed(dir) == nil)
        // cachectl's own unit from an older version is rewritten.
        try AtomicFile.write(
            unit.text.replacingOccurrences(of: "Type=forking", with: "Type=simple"), to: unit.path, mode: 0o644)
        #expect(try needed(dir)?.old?.contains("Type=simple") == true)
    }

    @Test func anyOtherUnitIsLeftAlone() throws {
        let dir = try root()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        // The distribution's own unit (Fedora).
        try AtomicFile.write("[Service]\n", to: dir + "/lib/systemd/system/cachefilesd.service", mode: 0o644)
        #expect(try needed(dir) == nil)
        // An administrator's unit in /etc.
        try FileManager.default.removeItem(atPath: dir + "/lib/systemd/system/cachefilesd.service")
        try AtomicFile.write(
            "[Service]\nExecStart=/opt/cachefilesd\n", to: dir + "/etc/systemd/system/cachefilesd.service", mode: 0o644)
        #expect(try needed(dir) == nil)
    }

    @Test func noCachefilesdInstalledMeansNoUnit() throws {
        let dir = try root(sysv: false)
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        #expect(try needed(dir) == nil)
        try AtomicFile.write("#!/bin/sh\n", to: dir + "/etc/init.d/cachefilesd", mode: 0o755)
        try FileManager.default.removeItem(atPath: dir + "/sbin/cachefilesd")
        #expect(try needed(dir) == nil)
    }

    @Test func enabledMeansAWantsLinkNotAnRcLink() throws {
        let dir = try root()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/etc/rc2.d", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/etc/rc2.d/S01cachefilesd", withDestinationPath: "../init.d/cachefilesd")
        #expect(!CachefilesDaemon.isEnabled(etc: dir + "/etc"))
        try AtomicFile.write("[Service]\n", to: dir + "/etc/systemd/system/cachefilesd.service", mode: 0o644)
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/etc/systemd/system/multi-user.target.wants/cachefilesd.service",
            withDestinationPath: "../cachefilesd.service")
        #expect(CachefilesDaemon.isEnabled(etc: dir + "/etc"))
    }

    @Test func aDaemonsUnitIsReadFromItsCgroup() throws {
        let dir = temporaryDirectory()
        defer { _ = try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/42", withIntermediateDirectories: true)
        try AtomicFile.write("0::/system.slice/cachefilesd.service\n", to: dir + "/42/cgroup", mode: 0o644)
        #expect(CachefilesDaemon.unitOf(42, proc: dir) == "cachefilesd.service")
        #expect(CachefilesDaemon.unitOf(43, proc: dir) == nil)
    }
}
