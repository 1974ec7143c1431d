import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

/// Runs the built `cachectl` binary as a user would, and checks exit status,
/// stdout JSON and stderr.
enum CLI {
    /// The binary SwiftPM built next to this test bundle.
    static let binary: String = {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = Path.directory(of: exe)
        while dir != "/" && !FileManager.default.isExecutableFile(atPath: dir + "/cachectl") {
            dir = Path.directory(of: dir)
        }
        return dir + "/cachectl"
    }()

    static func run(
        _ arguments: [String], as user: String? = nil /* uid, e.g. 65534 (nobody) */, memlockKiB: Int? = nil
    ) throws -> ExternalCommand.Result {
        var argv = [binary] + arguments
        if let user {
            argv = ["setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--"] + argv
        }
        if let memlockKiB {
            argv = ["prlimit", "--memlock=\(memlockKiB * 1024)"] + argv
        }
        return try ExternalCommand(argv).run()
    }

    static func json(_ result: ExternalCommand.Result) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        return try #require(object as? [String: Any])
    }
}

/// A file of random bytes under /var/tmp, dropped from the page cache.
final class ScratchFile {
    let dir: String
    let path: String

    init(size: Int, mode: mode_t = 0o644) throws {
        dir = try makeTemporaryDirectory("cli", in: "/var/tmp")
        chmod(dir, 0o755)
        path = dir + "/model.gguf"
        var bytes = [UInt8](repeating: 0, count: size)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        let file = try OpenFile(path)
        _ = fdatasync(file.fd)
        try file.advise(POSIX_FADV_DONTNEED)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }
}

@Suite struct CLITests {
    @Test func versionAndHelpExitZero() throws {
        #expect(try CLI.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        let help = try CLI.run(["warm", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--into"))
    }

    /// The C libraries are loaded when first called (mount tables, model promotion, the
    /// FUSE mirror, YAML), not at start-up, where they cost every command about 2.5 ms.
    @Test func startUpLoadsNoCLibrary() throws {
        let loadedLater = ["libcrypto", "libmount", "libfuse3", "liblz4", "libyaml"]
        for arguments in [["--version"], ["residency", "/proc/self/exe"], ["warm", "/proc/self/exe"]] {
            let result = try ExternalCommand(["/usr/bin/env", "LD_DEBUG=libs", CLI.binary] + arguments).run()
            #expect(result.status == 0)
            #expect(result.stderr.contains("libc.so.6"))  // the loader reports what it loads
            for library in loadedLater {
                #expect(!result.stderr.contains(library), "\(arguments) loaded \(library)")
            }
        }
        let mounts = try ExternalCommand(["/usr/bin/env", "LD_DEBUG=libs", CLI.binary, "mounts", "--json"]).run()
        #expect(mounts.status == 0)
        #expect(mounts.stderr.contains("libmount.so.1"))  // loaded when the mount table is read
        #expect(!mounts.stderr.contains("libyaml"))
        let scratch = try ScratchFile(size: 0)
        let path = scratch.dir + "/cachectl.yaml"
        try "shares: []\n".write(toFile: path, atomically: false, encoding: .utf8)
        let plan = try ExternalCommand(["/usr/bin/env", "LD_DEBUG=libs", CLI.binary, "plan", "--file", path]).run()
        #expect(plan.stderr.contains("libyaml-0.so.2"))  // loaded when the file is parsed
        #expect(!plan.stderr.contains("libfuse3"))
    }

    /// Without libmount (or libyaml), commands that need no mount table (or no YAML)
    /// still run, and one that does says what is missing (the library hidden in the
    /// child's own mount namespace).
    @Test(
        .enabled(if: Privileges.isRoot, "needs root for a mount namespace"),
        arguments: [
            ("libmount.so.1", "libmount1", "mounts"),
            ("libyaml-0.so.2", "libyaml-0-2", "plan --file CONFIG"),
        ])
    func withoutALibraryOnlyTheCommandsThatCallItFail(library: String, package: String, command: String) throws {
        let scratch = try ScratchFile(size: 0)
        let config = scratch.dir + "/cachectl.yaml"
        try "shares: []\n".write(toFile: config, atomically: false, encoding: .utf8)
        let script = """
            lib=$(ldconfig -p | awk -v name="$1" '$1 == name { print $NF; exit }')
            mount --bind /dev/null "$(readlink -f "$lib")" || exit 99
            "$0" residency /proc/self/exe >/dev/null || exit 98
            exec "$0" $2
            """
        let result = try ExternalCommand([
            "unshare", "-m", "--propagation", "private", "sh", "-c", script, CLI.binary, library,
            command.replacingOccurrences(of: "CONFIG", with: config),
        ]).run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot load \(library)"))
        #expect(result.stderr.contains("install it (Debian, Ubuntu: \(package))"))
    }

    @Test func usageErrorsExitTwoWithAJSONEnvelope() throws {
        let result = try CLI.run(["warm", "--jobs", "0", "--json", "x"])
        #expect(result.status == 2)
        let json = try CLI.json(result)
        #expect(json["failed"] as? Bool == true)
        #expect((json["msg"] as? String)?.contains("--jobs") == true)
    }

    @Test func warmPrintsOneJSONDocumentAndReachesFullResidency() throws {
        let file = try ScratchFile(size: 6 << 20)
        let result = try CLI.run(["warm", "--json", file.path])
        #expect(result.status == 0)
        let json = try CLI.json(result)
        #expect(json["failed"] as? Bool == false)
        #expect(json["changed"] as? Bool == true)
        #expect(json["bytes_read"] as? Int == 6 << 20)
        #expect(json["residency_percent"] as? Double == 100)

        let again = try CLI.json(try CLI.run(["warm", "--json", file.path]))
        #expect(again["changed"] as? Bool == false)
        #expect(again["bytes_already_resident"] as? Int == 6 << 20)
    }

    @Test func aMissingFileFailsTheRunButTheOthersAreWarmed() throws {
        let file = try ScratchFile(size: 1 << 20)
        let result = try CLI.run(["warm", "--json", file.dir + "/missing.gguf", file.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains(file.dir + "/missing.gguf"))
        let json = try CLI.json(result)
        #expect(json["failed"] as? Bool == true)
        #expect(json["bytes_read"] as? Int == 1 << 20)
    }

    @Test(.enabled(if: Privileges.isRoot, "needs root to drop to another user"))
    func permissionDeniedIsReportedPerFile() throws {
        let file = try ScratchFile(size: 1 << 20, mode: 0o600)
        let result = try CLI.run(["warm", file.path], as: "65534")
        #expect(result.status == 1)
        #expect(result.stderr.contains(file.path))
        #expect(result.stderr.contains("EACCES"))
    }

    @Test(.enabled(if: Privileges.isRoot, "needs root to drop to another user"))
    func untrustworthyMincoreIsReportedAsUnknownAndWarmReadsEverything() throws {
        let file = try ScratchFile(size: 2 << 20, mode: 0o644)
        // mincore claims full residency of a file nobody cannot write: cachectl must not believe it.
        let residency = try CLI.json(
            try CLI.run(["residency", "--json", "--residency-method", "mincore", file.path], as: "65534"))
        let entry = try #require((residency["files"] as? [[String: Any]])?.first)
        #expect(entry["resident"] == nil)
        #expect((entry["error"] as? String)?.contains("134fca9063ad") == true)

        let warm = try CLI.json(
            try CLI.run(["warm", "--json", "--residency-method", "mincore", file.path], as: "65534"))
        #expect(warm["bytes_read"] as? Int == 2 << 20)
    }

    /// A user who may not grow a pipe past pipe-max-size (1 MiB) still splices
    /// 16 MiB pieces: a pipe's size at a time.
    @Test(.enabled(if: Privileges.isRoot, "needs root to drop to another user"))
    func anUnprivilegedUserSplicesPiecesLargerThanItsPipe() throws {
        let file = try ScratchFile(size: 40 << 20, mode: 0o644)
        let result = try CLI.run(["warm", "--json", "--jobs", "2", "--chunk", "16M", file.path], as: "65534")
        #expect(result.status == 0)
        let warm = try CLI.json(result)
        #expect(warm["bytes_read"] as? Int == 40 << 20)
        #expect((warm["strategy"] as? String)?.hasSuffix("x 16M contiguous, no hints, spliced") == true)
        // The user cannot measure residency of a file it cannot write (mincore/cachestat); root can.
        let residency = try CLI.json(try CLI.run(["residency", "--json", file.path]))
        #expect((residency["total"] as? [String: Any])?["resident"] as? Int == 40 << 20)
    }

    @Test func lockHoldsPagesUntilSIGTERM() throws {
        let file = try ScratchFile(size: 4 << 20)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["warm", "--lock", file.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // Wait for the "locked" line, then check the kernel's count of locked memory.
        var text = ""
        while !text.contains("locked") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        #expect(text.contains("locked 4.00 MiB"))
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        let vmLck = status.split(separator: "\n").first { $0.hasPrefix("VmLck:") }
        let kib = Int(vmLck?.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        #expect(kib >= 4096)
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test(.enabled(if: Privileges.isRoot, "needs root to drop to another user"))
    func lockBeyondRLIMIT_MEMLOCKExplainsTheLimit() throws {
        let file = try ScratchFile(size: 4 << 20)
        let result = try CLI.run(["warm", "--lock", file.path], as: "65534", memlockKiB: 64)
        #expect(result.status == 1)
        #expect(result.stderr.contains("RLIMIT_MEMLOCK is 64.0 KiB"))
    }

    @Test func evictAndResidencyAgree() throws {
        let file = try ScratchFile(size: 3 << 20)
        _ = try CLI.run(["warm", file.path])
        let evict = try CLI.json(try CLI.run(["evict", "--json", file.path]))
        #expect(evict["released_bytes"] as? Int == 3 << 20)
        let residency = try CLI.json(try CLI.run(["residency", "--json", file.path]))
        #expect((residency["total"] as? [String: Any])?["resident"] as? Int == 0)
    }
}
