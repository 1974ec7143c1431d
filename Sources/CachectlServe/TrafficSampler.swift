import CachectlFSCache
import CachectlSystem
import Foundation

/// The server's own record of FS-Cache traffic: the kernel's counters read
/// every `interval` seconds on a thread of its own, the last hour kept. The
/// page's chart draws the differences (reads from and writes into the cache
/// per interval, in the unit this kernel counts: pages or operations).
public final class TrafficSampler: @unchecked Sendable {
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

    private let lock = NSLock()
    private var samples: [Sample] = []
    private var unit: String?
    private var layout: String?
    private var stopped = false
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
        let thread = Thread { [self] in
            while !lock.withLock({ stopped }) {
                let deadline = Monotonic.now() + interval
                while Monotonic.now() < deadline, !lock.withLock({ stopped }) {
                    usleep(useconds_t(min(0.2, interval) * 1_000_000))
                }
                if lock.withLock({ stopped }) { break }
                sampleOnce()
            }
        }
        thread.name = "cachectl-sampler"
        thread.start()
    }

    public func stop() { lock.withLock { stopped = true } }

    func sampleOnce() {
        let traffic = try? CacheTraffic.read(proc: proc)
        let sample = Sample(
            time: Date().timeIntervalSince1970, cacheReads: traffic?.cacheReads, cacheWrites: traffic?.cacheWrites,
            downloads: traffic?.downloads)
        lock.withLock {
            unit = traffic?.unit.rawValue
            layout = traffic?.layout.rawValue
            samples.append(sample)
            if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
        }
    }

    public func history() -> History {
        lock.withLock { History(intervalSeconds: interval, unit: unit, layout: layout, samples: samples) }
    }
}
