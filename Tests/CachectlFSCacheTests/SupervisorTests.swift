import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlFSCache

/// `cachectl cache supervise` against a stand-in cachefilesd (a shell script): what
/// it restarts, what it leaves dead, and what it writes in the log. One test at a
/// time: while one writes its script, another's posix_spawn child holds a copy of
/// the descriptor until it execs, and running the script then fails with ETXTBSY
/// (caught with strace; about every other run of the suite failed so).
@Suite(.serialized) struct SupervisorTests {
    /// A cachefilesd that counts its starts in DIR/starts, says its arguments on
    /// stderr, and aborts (SIGABRT) until it has started `aborts + 1` times, then exits 3.
    func standIn(_ dir: String, aborts: Int) throws -> String {
        let path = dir + "/cachefilesd"
        let script = """
            #!/bin/sh
            n=$(cat '\(dir)/starts' 2>/dev/null || echo 0)
            echo $((n + 1)) >'\(dir)/starts'
            echo "started $*" >&2
            ulimit -c 0
            [ "$n" -lt \(aborts) ] && kill -ABRT $$
            exit 3

            """
        // Through a descriptor opened O_CLOEXEC (Foundation's atomic write is not): a
        // process another suite spawns meanwhile would keep it open for writing for
        // its whole life, and running the script would fail with ETXTBSY.
        try AtomicFile.write(script, to: path, mode: 0o755)
        return path
    }

    @Test func startsAnAbortedDaemonAgainAndExitsWithItsStatus() throws {
        let dir = try makeTemporaryDirectory("supervise")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let daemon = try standIn(dir, aborts: 2)
        let log = dir + "/cachefilesd.log"
        let status = CachefilesDaemon.supervise(configPath: dir + "/cachefilesd.conf", daemon: daemon, log: log)
        #expect(status == 3)
        #expect(try String(contentsOfFile: dir + "/starts", encoding: .utf8) == "3\n")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.components(separatedBy: "was killed by signal 6; starting it again").count == 3)
        #expect(text.contains("started -n -s -f \(dir)/cachefilesd.conf"))
    }

    @Test func givesUpAfterFiveRestartsInAMinute() throws {
        let dir = try makeTemporaryDirectory("supervise")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let daemon = try standIn(dir, aborts: 100)
        let log = dir + "/cachefilesd.log"
        let status = CachefilesDaemon.supervise(configPath: dir + "/cachefilesd.conf", daemon: daemon, log: log)
        #expect(status == 128 + SIGABRT)
        #expect(try String(contentsOfFile: dir + "/starts", encoding: .utf8) == "6\n")
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("6 times within 60 s; not starting it again"))
    }

    @Test func leavesADaemonStoppedWithSIGTERMStopped() throws {
        let dir = try makeTemporaryDirectory("supervise")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let daemon = dir + "/cachefilesd"
        try AtomicFile.write("#!/bin/sh\nkill -TERM $$\n", to: daemon, mode: 0o755)
        let status = CachefilesDaemon.supervise(configPath: "/nonexistent", daemon: daemon, log: dir + "/log")
        #expect(status == 128 + SIGTERM)
    }
}
