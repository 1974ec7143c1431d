import CachectlSystem
import Synchronization

/// A flag shared by queued jobs so that a whole group can be dropped at once
/// (a file closed, a directory's shard list superseded, unmount).
final class CancelToken: Sendable {
    private let cancelled = Mutex(false)
    var isCancelled: Bool { cancelled.withLock { $0 } }
    func cancel() { cancelled.withLock { $0 = true } }
}

/// Background work that must never hold up a FUSE read: compressing chunks that
/// a reader stored raw, reading ahead in an open file, and reading the next files
/// of a directory (the other shards of a model). Runs on threads it owns.
final class Prefetcher: @unchecked Sendable {
    enum Job {
        /// Replace a raw chunk with its LZ4 form (looked up when the job runs, so a
        /// queued job never keeps an evicted chunk's memory alive).
        case compress(ChunkKey)
        /// Read chunks of an open file into the pool.
        case readAhead(SourceFileHandle, ChunkRange, CancelToken)
        /// Read a sibling file (opened by the worker) into the pool, within a byte budget.
        case sibling(path: String, CancelToken, budget: SiblingBudget)
    }

    struct ChunkRange: Sendable {
        var lower: Int
        var upper: Int
    }

    /// Bytes the sibling prefetch of one open may bring in, so that it never
    /// pushes the whole working set out of the pool.
    final class SiblingBudget: Sendable {
        private let remaining: Mutex<Int64>
        init(_ bytes: Int64) { remaining = Mutex(bytes) }
        func take(_ n: Int) -> Bool {
            remaining.withLock { remaining in
                guard remaining >= Int64(n) else { return false }
                remaining -= Int64(n)
                return true
            }
        }
    }

    private let condition = Condition()
    private var compressQueue: [Job] = []
    private var readAheadQueue: [Job] = []
    private var siblingQueue: [Job] = []
    private var stopping = false
    private var running = 0
    private var scheduled: UInt64 = 0
    private var cancelledJobs: UInt64 = 0

    /// Does the work of a job; set once by the owner before ``start(threads:)``.
    var perform: (@Sendable (Job) -> Void)?

    func start(threads count: Int) {
        condition.lock()
        defer { condition.unlock() }
        for n in 0..<count {
            // A thread the kernel refuses leaves fewer prefetchers; reads never wait on them.
            guard (try? startThread("cachectl-prefetch-\(n)", stackSize: 1 << 20) { [self] in workerLoop() }) != nil
            else { break }
            running += 1
        }
    }

    func enqueue(_ job: Job) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return }
        switch job {
        case .compress: compressQueue.append(job)
        case .readAhead: readAheadQueue.append(job)
        case .sibling: siblingQueue.append(job)
        }
        scheduled += 1
        condition.signal()
    }

    /// Counts of jobs scheduled and dropped because they were cancelled before running.
    var counts: (scheduled: UInt64, cancelled: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        return (scheduled, cancelledJobs)
    }

    /// Drops queued jobs and waits for the workers to finish the job at hand.
    func stop() {
        condition.lock()
        stopping = true
        cancelledJobs += UInt64(compressQueue.count + readAheadQueue.count + siblingQueue.count)
        compressQueue = []
        readAheadQueue = []
        siblingQueue = []
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func nextJob() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopping { return nil }
            if !compressQueue.isEmpty { return compressQueue.removeFirst() }
            if let job = popLive(&readAheadQueue) { return job }
            if let job = popLive(&siblingQueue) { return job }
            condition.wait()
        }
    }

    /// Removes cancelled jobs from the front; returns the first live one.
    private func popLive(_ queue: inout [Job]) -> Job? {
        while !queue.isEmpty {
            let job = queue.removeFirst()
            switch job {
            case .readAhead(_, _, let token), .sibling(_, let token, _):
                if token.isCancelled {
                    cancelledJobs += 1
                    continue
                }
            case .compress: break
            }
            return job
        }
        return nil
    }

    func noteCancelled() {
        condition.lock()
        cancelledJobs += 1
        condition.unlock()
    }

    private func workerLoop() {
        while let job = nextJob() {
            perform?(job)
        }
        condition.lock()
        running -= 1
        condition.broadcast()
        condition.unlock()
    }
}
