import Glibc
import Synchronization

/// Holds SIGTERM, SIGINT and SIGHUP back while a step that must not stop
/// half-way runs (fstab renamed → share unmounted → mounted again, or rolled
/// back). systemd sends SIGTERM when it stops or times out a unit, a terminal
/// sends SIGINT: either used to kill cachectl between the unmount and the
/// mount, leaving the share unmounted. A signal that arrives inside the step
/// is recorded by a handler (process-wide, so whichever thread takes it) and
/// delivered again, with the old disposition back, once the step is over.
///
/// SIGKILL cannot be held: the next run recognises the half-done state instead.
public enum DeferredSignals {
    public static let held: [Int32] = [SIGTERM, SIGINT, SIGHUP]

    /// The last signal received while held, and how many arrived so far.
    /// Atomics: written from the handler.
    private static let received = Atomic<Int32>(0)
    private static let count = Atomic<Int>(0)
    private static let state = Mutex(State())

    private struct State {
        var depth = 0
        var saved: [(Int32, sigaction)] = []
    }

    /// Runs `body` with the signals held. Returns its result (a thrown error
    /// included: a rolled-back step still owes the signal) and the signal that
    /// arrived meanwhile, which the caller delivers with ``deliver(_:)`` once it
    /// has finished the step. Overlapping calls (nested, or other threads) share
    /// one hold; each that saw a signal reports it, and a delivery while another
    /// still holds is caught again until the last one ends.
    public static func run<T, E: Error>(_ body: () throws(E) -> T) -> (result: Result<T, E>, signal: Int32?) {
        let before = hold()
        let result: Result<T, E>
        do throws(E) {
            result = .success(try body())
        } catch {
            result = .failure(error)
        }
        return (result, release(since: before))
    }

    /// Sends `signal` to this process again (after ``run(_:)`` restored its disposition).
    public static func deliver(_ signal: Int32?) {
        guard let signal else { return }
        kill(getpid(), signal)
    }

    /// Installs the handler (first holder only); returns the signal count so far.
    private static func hold() -> Int {
        state.withLock { state in
            state.depth += 1
            if state.depth == 1 {
                _ = received.load(ordering: .sequentiallyConsistent)  // initialised before any handler can run
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { signal in
                    DeferredSignals.received.store(signal, ordering: .sequentiallyConsistent)
                    DeferredSignals.count.add(1, ordering: .sequentiallyConsistent)
                }
                sigemptyset(&action.sa_mask)
                action.sa_flags = SA_RESTART
                for signal in held {
                    var old = sigaction()
                    if sigaction(signal, &action, &old) == 0 { state.saved.append((signal, old)) }
                }
            }
            return count.load(ordering: .sequentiallyConsistent)
        }
    }

    /// Restores the old dispositions (last holder only); returns the signal
    /// received since `before`, if any.
    private static func release(since before: Int) -> Int32? {
        state.withLock { state -> Int32? in
            state.depth -= 1
            if state.depth == 0 {
                for (signal, old) in state.saved {
                    var old = old
                    sigaction(signal, &old, nil)
                }
                state.saved = []
            }
            guard count.load(ordering: .sequentiallyConsistent) != before else { return nil }
            let signal = received.load(ordering: .sequentiallyConsistent)
            return signal == 0 ? nil : signal
        }
    }
}
