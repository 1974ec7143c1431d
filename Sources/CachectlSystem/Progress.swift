import Glibc
import Synchronization

/// A progress line on stderr: bytes, rate, ETA and the current item. Drawn only
/// when stderr is a terminal, at most ten times a second; safe to update from
/// many threads.
public final class ProgressBar: Sendable {
    private let total: UInt64
    private let label: String
    private let enabled: Bool
    private let start = Monotonic.now()
    private struct State {
        var done: UInt64 = 0
        var item = ""
        var lastDraw = 0.0
        var drawn = false
    }
    private let state = Mutex(State())
    private let observer: Observer?

    /// Told every step: bytes done, bytes in all, the current item. Called on the
    /// worker's thread, so it must be quick (`cachectl serve` stores it for its job).
    public typealias Observer = @Sendable (_ done: UInt64, _ total: UInt64, _ item: String) -> Void

    /// - Parameters:
    ///   - total: bytes expected in all.
    ///   - enabled: pass false for `--json` or `--quiet`; it is also off when stderr is not a tty.
    ///   - observer: also told each step, whether or not a line is drawn.
    public init(total: UInt64, label: String, enabled: Bool, observer: Observer? = nil) {
        self.total = total
        self.label = label
        self.enabled = enabled && StandardStream.error.isTerminal
        self.observer = observer
    }

    public func setItem(_ name: String) {
        guard enabled || observer != nil else { return }
        let done = state.withLock {
            $0.item = name
            return $0.done
        }
        observer?(done, total, name)
        if enabled { draw(force: false) }
    }

    public func add(_ bytes: UInt64) {
        guard enabled || observer != nil else { return }
        let (done, item) = state.withLock {
            $0.done += bytes
            return ($0.done, $0.item)
        }
        observer?(done, total, item)
        if enabled { draw(force: false) }
    }

    /// Clears the line so the summary that follows starts on a clean line.
    public func finish() {
        guard enabled else { return }
        state.withLock {
            if $0.drawn { StandardStream.error.write("\r\u{1B}[K") }
            $0.drawn = false
        }
    }

    private func draw(force: Bool) {
        state.withLock { state in
            let now = Monotonic.now()
            guard force || now - state.lastDraw >= 0.1 else { return }
            state.lastDraw = now
            let done = state.done
            let elapsed = now - start
            let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar =
                String(repeating: "=", count: filled) + (filled < width ? ">" : "")
                + String(repeating: " ", count: max(0, width - filled - 1))
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            let eta = rate > 0 ? Double(total - min(done, total)) / rate : 0
            var line = "\(label) [\(bar)] \(Int(fraction * 100))% \(ByteSize.format(done))/\(ByteSize.format(total))"
            line += "  \(ByteSize.format(UInt64(rate)))/s  ETA \(Self.duration(eta))  \(state.item)"
            StandardStream.error.write("\r\u{1B}[K" + line.prefix(Self.columns() - 1))
            state.drawn = true
        }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }

    static func columns() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return 100
    }
}

/// Seconds on CLOCK_MONOTONIC, for durations that must not jump with the wall clock.
public enum Monotonic {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
