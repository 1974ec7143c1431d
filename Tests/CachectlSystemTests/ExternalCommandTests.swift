import CachectlSystem
import Foundation
import Glibc
import Testing

/// Real programs: the timeout, the process group, and a child that keeps the
/// output open must never make a run wait without bound.
@Suite struct ExternalCommandTests {
    @Test func capturesOutputStatusAndInput() throws {
        let result = try ExternalCommand(["sh", "-c", "cat; echo err >&2; exit 3"]).run(input: "hello\n")
        #expect(result.status == 3)
        #expect(result.stdout == "hello\n")
        #expect(result.stderr == "err\n")
        #expect(try ExternalCommand(["true"]).run().succeeded)
    }

    @Test func aCommandPastItsTimeoutIsKilledAndNamed() throws {
        let start = Monotonic.now()
        do {
            _ = try ExternalCommand(["sleep", "100"], timeout: 1).run()
            Issue.record("sleep 100 returned within a 1 s timeout")
        } catch {
            #expect(error.errno == ETIMEDOUT)
            #expect(error.description.contains("sleep 100"))
            #expect(error.description.contains("1 s"))
        }
        #expect(Monotonic.now() - start < 10)
    }

    @Test func theTimeoutKillsTheWholeProcessGroup() throws {
        let dir = NSTemporaryDirectory() + "cachectl-cmd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pidFile = dir + "/pid"
        #expect(throws: CachectlError.self) {
            try ExternalCommand(["sh", "-c", "sleep 100 & echo $! > \(pidFile); wait"], timeout: 1).run()
        }
        let pid = try #require(pid_t(try AtomicFile.readText(pidFile).trimmingCharacters(in: .whitespacesAndNewlines)))
        var gone = false
        for _ in 0..<200 {
            // Gone, or a zombie waiting for init to reap it.
            let status = (try? AtomicFile.readText("/proc/\(pid)/stat")) ?? ""
            if kill(pid, 0) != 0 || status.contains(") Z ") {
                gone = true
                break
            }
            usleep(10_000)
        }
        #expect(gone, "the grandchild sleep \(pid) outlived the timeout")
        if !gone { kill(pid, SIGKILL) }
    }

    /// Foundation's Process read to EOF: a daemon started by the command kept the
    /// pipe open and the run waited as long as the daemon lived.
    @Test func aChildLeftHoldingTheOutputDoesNotHoldTheRun() throws {
        let start = Monotonic.now()
        let result = try ExternalCommand(["sh", "-c", "sleep 100 & echo $!; exit 0"], timeout: 60).run()
        #expect(result.status == 0)
        #expect(Monotonic.now() - start < 10)
        if let pid = pid_t(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
    }
}
