import CachectlSystem
import Foundation
import Glibc
import Testing

/// Each test runs in a child process of its own (an exit test): signal
/// dispositions are process-wide, and other tests hold signals too. The child
/// writes a marker once the step is over; the parent reads it.
@Suite struct DeferredSignalsTests {
    static func marker() -> String { "/tmp/cachectl-deferred-\(getpid())-\(UUID().uuidString.prefix(8))" }

    /// SIGTERM in the middle of a held step: the step runs to its end, the
    /// signal is reported, and delivering it then ends the process by SIGTERM.
    @Test func aSignalDuringTheStepWaitsUntilItEndsThenEndsTheProcess() async throws {
        let marker = Self.marker()
        defer { unlink(marker) }
        await #expect(processExitsWith: .signal(SIGTERM)) { [marker = marker as String] in
            let (result, signal) = DeferredSignals.run { () -> Int in
                kill(getpid(), SIGTERM)
                var slept = timespec(tv_sec: 0, tv_nsec: 50_000_000)
                nanosleep(&slept, nil)
                return 42
            }
            guard case .success(let value) = result, signal == SIGTERM else { exit(3) }
            try? "step finished with \(value)".write(toFile: marker, atomically: false, encoding: .utf8)
            DeferredSignals.deliver(signal)
            var slept = timespec(tv_sec: 5, tv_nsec: 0)
            nanosleep(&slept, nil)
            exit(5)  // the delivered SIGTERM should have ended the process
        }
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "step finished with 42")
    }

    @Test func aFailedStepStillReportsTheSignal() async throws {
        let marker = Self.marker()
        defer { unlink(marker) }
        await #expect(processExitsWith: .signal(SIGINT)) { [marker = marker as String] in
            let (result, signal) = DeferredSignals.run { () throws(CachectlError) -> Void in
                kill(getpid(), SIGINT)
                var slept = timespec(tv_sec: 0, tv_nsec: 50_000_000)
                nanosleep(&slept, nil)
                throw CachectlError.failed("step failed")
            }
            guard case .failure = result, signal == SIGINT else { exit(3) }
            try? "rolled back".write(toFile: marker, atomically: false, encoding: .utf8)
            DeferredSignals.deliver(signal)
            var slept = timespec(tv_sec: 5, tv_nsec: 0)
            nanosleep(&slept, nil)
            exit(5)
        }
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "rolled back")
    }
}
