import CachectlSystem
import Foundation
import Glibc
import Testing

/// Issue 13, class 5: input accepted or refused wrongly. The built binary, as a
/// user runs it: usage errors exit 2, name the field, and write nothing.
@Suite struct InputBoundsCLITests {
    /// A fresh directory under /var/tmp, removed on deinit.
    final class Scratch {
        let path: String
        init() throws {
            path = "/var/tmp/cachectl-cli-input-\(getpid())-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func write(_ name: String, _ text: String) throws -> String {
            let full = path + "/" + name
            try text.write(toFile: full, atomically: false, encoding: .utf8)
            return full
        }
    }

    @Test(arguments: [
        "/etc/cachectl/$HOME.yaml", "/etc/cachectl/100%.yaml", "/etc/cachectl/a\"b.yaml",
        "/etc/cachectl/a'b.yaml", "/etc/cachectl/my site.yaml", "/etc/cachectl/a\nExecStartPre=/bin/sh.yaml",
        "/etc/cachectl/a\\b.yaml", "/etc/cachectl/a;b.yaml",
    ])
    func installUnitsRefusesAConfigPathSystemdWouldReinterpret(config: String) throws {
        let scratch = try Scratch()
        let units = scratch.path + "/units"
        let result = try CLI.run([
            "install-units", "--dir", units, "--binary", "/usr/local/bin/cachectl", "--config", config, "--json",
        ])
        #expect(result.status == 2, "\(result.stdout) \(result.stderr)")
        let json = try CLI.json(result)
        #expect((json["msg"] as? String)?.contains("--config") == true)
        #expect(!FileManager.default.fileExists(atPath: units), "nothing is written")
    }

    @Test(arguments: ["1K", "2G"])
    func fscReadaheadOutOfRangeIsAUsageError(readahead: String) throws {
        let result = try CLI.run(["fsc", "enable", "/mnt/no-such-share", "--readahead", readahead, "--json"])
        #expect(result.status == 2, "\(result.stdout) \(result.stderr)")
        #expect((result.stdout + result.stderr).contains("--readahead"))
    }

    @Test(arguments: [["--nconnect", "0"], ["--nconnect", "17"], ["--rsize", "1000"], ["--rsize", "16M"]])
    func fscTuningOutOfRangeIsAUsageErrorNamingTheOption(option: [String]) throws {
        let result = try CLI.run(["fsc", "enable", "/mnt/no-such-share", "--json"] + option)
        #expect(result.status == 2, "\(result.stdout) \(result.stderr)")
        #expect((result.stdout + result.stderr).contains(option[0]))
    }

    @Test func installUnitsWritesAPlainConfigPathVerbatim() throws {
        let scratch = try Scratch()
        let units = scratch.path + "/units"
        let result = try CLI.run([
            "install-units", "--dir", units, "--binary", "/usr/local/bin/cachectl",
            "--config", "/etc/cachectl/site-1_a.b+c@d.yaml", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let text = try String(contentsOfFile: units + "/cachectl-apply.service", encoding: .utf8)
        #expect(text.contains("ExecStart=/usr/local/bin/cachectl apply --file /etc/cachectl/site-1_a.b+c@d.yaml"))
    }

    @Test func everyUnitNamesTheManPage() throws {
        let scratch = try Scratch()
        let units = scratch.path + "/units"
        let result = try CLI.run(["install-units", "--dir", units, "--binary", "/usr/bin/cachectl", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        for name in [
            "cachectl-apply.service", "cachectl-warm@.service", "cachectl-fuse@.service", "cachectl-serve.service",
        ] {
            let text = try String(contentsOfFile: units + "/" + name, encoding: .utf8)
            #expect(text.contains("\nDocumentation=man:cachectl(1)\n"), "\(name)")
        }
    }

    @Test func aConfigFileOverOneMiBIsRefusedBeforeParsing() throws {
        let scratch = try Scratch()
        let value = String(repeating: "x", count: 4 << 20)
        let file = try scratch.write("big.yaml", "version: 1\nmodels:\n  dir: \(value)\n")
        let started = Monotonic.now()
        let result = try CLI.run(["plan", "--file", file, "--json"])
        #expect(Monotonic.now() - started < 5)
        #expect(result.status == 2)
        #expect(result.stdout.count + result.stderr.count < 2000, "no value echoed in full")
        #expect((try CLI.json(result)["msg"] as? String)?.contains("at most 1.00 MiB") == true)
    }

    @Test func anErrorNeverEchoesALongValueInFull() throws {
        let scratch = try Scratch()
        let value = String(repeating: "y", count: 500_000)
        let file = try scratch.write("long.yaml", "version: 1\nmodels:\n  dir: \(value)\n  cold_store: /srv/cold\n")
        let result = try CLI.run(["plan", "--file", file, "--json"])
        #expect(result.status == 2)
        #expect(
            result.stdout.count + result.stderr.count < 2000,
            "got \(result.stdout.count + result.stderr.count) characters")
        #expect((try CLI.json(result)["msg"] as? String)?.contains("models.dir") == true)
    }

    @Test func aFileOfManyProblemsReportsTheFirstTwenty() throws {
        let scratch = try Scratch()
        let keys = (0..<20_000).map { "unknown_key_\($0): 1" }.joined(separator: "\n")
        let file = try scratch.write("many.yaml", "version: 1\n" + keys + "\n")
        let result = try CLI.run(["plan", "--file", file, "--json"])
        #expect(result.status == 2)
        #expect(
            result.stdout.count + result.stderr.count < 20_000,
            "got \(result.stdout.count + result.stderr.count) characters")
        #expect((try CLI.json(result)["msg"] as? String)?.contains("19980 more problem(s) not shown") == true)
    }

    @Test func aModelsDirWithANewlineIsAUsageErrorNamingTheField() throws {
        let scratch = try Scratch()
        let file = try scratch.write(
            "nl.yaml", "version: 1\nmodels:\n  dir: \"/srv/models\\n/etc\"\n  cold_store: /srv/cold\n")
        let result = try CLI.run(["plan", "--file", file, "--json"])
        #expect(result.status == 2, "\(result.stdout) \(result.stderr)")
        let msg = try CLI.json(result)["msg"] as? String
        #expect(msg?.contains("models.dir") == true, "\(msg ?? "")")
        #expect(msg?.contains("\\n") == true, "the newline is shown escaped: \(msg ?? "")")
    }

    @Test(.enabled(if: Privileges.isRoot, "needs root to drop to another user"))
    func installUnitsWithoutPrivilegesFailsBeforeCreatingAnything() throws {
        let scratch = try Scratch()  // root's, 0755: nobody cannot write in it
        let units = scratch.path + "/systemd/system"
        let result = try CLI.run(
            ["install-units", "--dir", units, "--config", "/etc/cachectl/site.yaml", "--json"], as: "65534")
        #expect(result.status == 1)
        #expect((try CLI.json(result)["msg"] as? String)?.contains("not writable") == true)
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/systemd"))
        let check = try CLI.run(
            ["install-units", "--dir", units, "--config", "/etc/cachectl/site.yaml", "--check", "--json"], as: "65534")
        #expect(check.status == 0, "--check needs no privileges: \(check.stderr)")
    }
}
