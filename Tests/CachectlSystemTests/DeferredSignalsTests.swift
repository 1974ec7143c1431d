import CachectlSystem
import Glibc
import Testing

/// Serialized: the signal disposition is process-wide.
@Suite(.serialized) struct DeferredSignalsTests {
    /// SIGTERM in the middle of a held step: the step runs to its end, then
    /// the signal is reported (and here handled by the test instead of killing it).
    @Test func aSignalDuringTheStepWaitsUntilItEnds() {
        let (result, signal) = DeferredSignals.run { () -> Int in
            kill(getpid(), SIGTERM)
            var slept = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            nanosleep(&slept, nil)
            return 42
        }
        if case .success(let value) = result { #expect(value == 42) } else { Issue.record("no value") }
        #expect(signal == SIGTERM)
    }

    @Test func aFailedStepStillReportsTheSignal() {
        let (result, signal) = DeferredSignals.run { () throws(SystemError) -> Void in
            kill(getpid(), SIGINT)
            throw SystemError.failed("step failed")
        }
        #expect(throws: SystemError.self) { try result.get() }
        #expect(signal == SIGINT)
    }
}
