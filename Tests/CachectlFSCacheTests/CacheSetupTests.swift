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
        #expect(throws: CachefilesdConfig.Invalid.self) { try setup(dir) { $0.bstop = 8 }.run() }
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

/// Debian's /etc/default/cachefilesd as the package ships it: the init script
/// starts no daemon until RUN=yes, so cache setup under systemd turns it on.
@Suite struct CachefilesdDefaultsTests {
    let shipped = "# Defaults for cachefilesd initscript\n# sourced by /etc/init.d/cachefilesd\n\n# You must uncomment the run=yes line below for cachefilesd to start.\n# Before doing so, please read /usr/share/doc/cachefilesd/howto.txt.gz as\n# extended user attributes need to be enabled on the cache filesystem.\n#RUN=yes\n\n# Additional options that are passed to the Daemon.\nDAEMON_OPTS=\"\"\n"

    @Test func theShippedFileRunsNothingAndEnablingChangesOneLine() {
        let defaults = CachefilesdDefaults(path: "/etc/default/cachefilesd", text: shipped)
        #expect(!defaults.runsDaemon)
        let enabled = defaults.enabled
        #expect(CachefilesdDefaults(path: defaults.path, text: enabled).runsDaemon)
        let before = shipped.split(separator: "\n", omittingEmptySubsequences: false)
        let after = enabled.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(before.count == after.count)
        #expect(zip(before, after).filter { $0 != $1 }.map { "\($0.1)" } == ["RUN=yes"])
    }

    @Test func aFileWithoutARunLineGetsOneAppended() {
        let defaults = CachefilesdDefaults(path: "x", text: "DAEMON_OPTS=\"\"")
        #expect(defaults.enabled == "DAEMON_OPTS=\"\"\nRUN=yes\n")
        #expect(CachefilesdDefaults(path: "x", text: "RUN=\"yes\"\n").runsDaemon)
        #expect(!CachefilesdDefaults(path: "x", text: "  # RUN=yes\n").runsDaemon)
    }
}
