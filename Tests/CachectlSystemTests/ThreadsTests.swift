import CachectlSystem
import Glibc
import Testing

/// cachectl's own threads and condition variable (what replaced Foundation's Thread and NSCondition).
@Suite struct ThreadsTests {
    @Test func aThreadRunsItsBodyUnderItsNameAndWakesTheWaiter() throws {
        final class Box: @unchecked Sendable {
            var name = ""
            var done = false
        }
        let box = Box()
        let condition = Condition()
        try startThread("cachectl-test-thread-long-name") {
            let name = (try? AtomicFile.readText("/proc/thread-self/comm")) ?? ""
            condition.withLock {
                box.name = name.trimmingWhitespace()
                box.done = true
            }
            condition.broadcast()
        }
        condition.lock()
        while !box.done { condition.wait() }
        condition.unlock()
        // The kernel keeps 15 bytes of a thread's name.
        #expect(box.name == "cachectl-test-t")
    }

    @Test func aTimedWaitEndsAtItsDeadlineOnTheMonotonicClock() {
        let condition = Condition()
        let start = Monotonic.now()
        condition.lock()
        let signalled = condition.wait(until: start + 0.05)
        condition.unlock()
        let waited = Monotonic.now() - start
        #expect(!signalled)
        #expect(waited >= 0.05 && waited < 5)
    }
}
