import CachectlFSCache
import CachectlSystem
import FoundationEssentials
import Glibc
import Synchronization

/// The server's own record of FS-Cache traffic: the kernel's counters read
/// every `interval` seconds on a thread of its own, the last hour kept. The
/// page's chart draws the differences (reads from and writes into the cache
/// per interval, in the unit this kernel counts: pages or operations).
public final class TrafficSampler: Sendable {
    public struct Sample: Encodable, Sendable, Equatable {
        /// Seconds since the epoch.
        public var time: Double
        public var cacheReads: UInt64?
        public var cacheWrites: UInt64?
        public var downloads: UInt64?
    }

    public struct History: Encodable, Sendable {
        public var intervalSeconds: Double
        /// `pages` or `operations` (nil: no FS-Cache statistics on this kernel).
        public var unit: String?
        public var layout: String?
        /// Oldest first; counters as read (differences make the rates).
        public var samples: [Sample]
    }

    private struct State {
        var samples: [Sample] = []
        var unit: String?
        var layout: String?
        var stopped = false
    }
    private let state = Mutex(State())
    public let interval: Double
    private let proc: String
    private let capacity: Int

    public init(interval: Double, proc: String) {
        self.interval = interval
        self.proc = proc
        capacity = max(2, Int((3600 / interval).rounded(.up)) + 1)
    }

    /// Reads once now, then every interval until ``stop()``.
    public func start() {
        sampleOnce()
        // Without a thread (RLIMIT_NPROC) the chart keeps its one sample: serving goes on.
        try? startThread("cachectl-sampler") { [self] in
            while !stopped {
                let deadline = Monotonic.now() + interval
                while Monotonic.now() < deadline, !stopped {
                    usleep(useconds_t(min(0.2, interval) * 1_000_000))
                }
                if stopped { break }
                sampleOnce()
            }
        }
    }

    public func stop() { state.withLock { $0.stopped = true } }

    private var stopped: Bool { state.withLock { $0.stopped } }

    func sampleOnce() {
        let traffic = try? CacheTraffic.read(proc: proc)
        let sample = Sample(
            time: Date().timeIntervalSince1970, cacheReads: traffic?.cacheReads, cacheWrites: traffic?.cacheWrites,
            downloads: traffic?.downloads)
        state.withLock { s in
            s.unit = traffic?.unit.rawValue
            s.layout = traffic?.layout.rawValue
            s.samples.append(sample)
            if s.samples.count > capacity { s.samples.removeFirst(s.samples.count - capacity) }
        }
    }

    public func history() -> History {
        state.withLock { s in History(intervalSeconds: interval, unit: s.unit, layout: s.layout, samples: s.samples) }
    }
}
