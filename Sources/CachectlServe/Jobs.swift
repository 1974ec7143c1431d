import CachectlSystem
import FoundationEssentials
import Synchronization

/// Long operations (promote, demote, warm, tier changes), each on a thread of
/// its own: they copy, fsync and read whole models, blocking syscalls that must
/// not hold one of Swift's cooperative threads (which serve every request).
/// A job has an id; its progress and end are published to subscribers (the
/// Server-Sent Events stream of `/api/jobs/{id}/events`).
public final class JobBoard: Sendable {
    public struct Job: Encodable, Sendable {
        public enum State: String, Encodable, Sendable { case running, succeeded, failed }
        public var id: String
        /// `promote`, `demote`, `warm`, `tier-create`, `tier-resize`, `tier-destroy`.
        public var kind: String
        /// The model or tier it acts on.
        public var target: String
        public var state: State
        public var doneBytes: UInt64 = 0
        public var totalBytes: UInt64 = 0
        /// The file being copied or read.
        public var item: String = ""
        /// One line: what happened (the CLI's message), or why it failed.
        public var msg: String = ""
        /// The library call's result, as the CLI's `--json` data.
        public var result: JSONValue?
        public var startedAt: Double
        public var seconds: Double = 0
    }

    private struct State {
        var jobs: [String: Job] = [:]
        var order: [String] = []
        var subscribers: [String: [UUID: AsyncStream<Job>.Continuation]] = [:]
        var lastPublished: [String: Double] = [:]
        var next = 1
    }
    private let state = Mutex(State())
    private let maxRunning: Int
    /// Finished jobs kept for `GET /api/jobs`.
    private let keep = 50

    public init(maxRunning: Int) { self.maxRunning = maxRunning }

    public struct Busy: Error { public var running: Int }

    /// Starts `work` on a new thread and returns its job at once.
    /// - Parameter work: gets a progress observer; returns the message and the result.
    public func start(
        kind: String, target: String,
        _ work:
            @escaping @Sendable (_ observe: @escaping ProgressBar.Observer) throws -> (msg: String, result: JSONValue)
    ) throws(Busy) -> Job {
        let started: Result<Job, Busy> = state.withLock { s in
            let running = s.jobs.values.filter { $0.state == .running }.count
            guard running < maxRunning else { return .failure(Busy(running: running)) }
            let id = "j\(s.next)-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            s.next += 1
            let job = Job(id: id, kind: kind, target: target, state: .running, startedAt: Date().timeIntervalSince1970)
            s.jobs[id] = job
            s.order.append(id)
            while s.order.count > keep, let old = s.order.first(where: { s.jobs[$0]?.state != .running }) {
                s.order.removeAll { $0 == old }
                s.jobs[old] = nil
            }
            return .success(job)
        }
        let job = try started.get()
        let start = Monotonic.now()
        do {
            try startThread("cachectl-\(kind)") { [self] in
                let outcome: Result<(msg: String, result: JSONValue), any Error>
                do {
                    outcome = .success(
                        try work { done, total, item in self.progress(job.id, done: done, total: total, item: item) })
                } catch {
                    outcome = .failure(error)
                }
                finish(job.id, outcome, seconds: Monotonic.now() - start)
            }
        } catch {
            // No thread (RLIMIT_NPROC, memory): the job ends at once, failed with why.
            finish(job.id, .failure(error), seconds: 0)
        }
        return job
    }

    public func job(_ id: String) -> Job? { state.withLock { $0.jobs[id] } }

    public func list() -> [Job] { state.withLock { s in s.order.compactMap { s.jobs[$0] } } }

    /// The job now, then every change until it ends (then the stream finishes).
    public func subscribe(_ id: String) -> AsyncStream<Job>? {
        state.withLock { s -> AsyncStream<Job>? in
            guard let job = s.jobs[id] else { return nil }
            let (stream, continuation) = AsyncStream<Job>.makeStream(bufferingPolicy: .bufferingNewest(8))
            continuation.yield(job)
            if job.state != .running {
                continuation.finish()
            } else {
                let key = UUID()
                s.subscribers[id, default: [:]][key] = continuation
                continuation.onTermination = { [weak self] _ in
                    guard let self else { return }
                    self.state.withLock { _ = $0.subscribers[id]?.removeValue(forKey: key) }
                }
            }
            return stream
        }
    }

    private func progress(_ id: String, done: UInt64, total: UInt64, item: String) {
        // Continuations are called outside the lock: finishing one runs its
        // onTermination, which takes the lock.
        let (job, targets) = state.withLock { s -> (Job?, [AsyncStream<Job>.Continuation]) in
            guard var job = s.jobs[id] else { return (nil, []) }
            job.doneBytes = done
            job.totalBytes = total
            job.item = item
            s.jobs[id] = job
            // At most ten events a second per job; the last state always goes out at the end.
            let now = Monotonic.now()
            guard now - (s.lastPublished[id] ?? 0) >= 0.1 else { return (nil, []) }
            s.lastPublished[id] = now
            return (job, Array((s.subscribers[id] ?? [:]).values))
        }
        if let job { for continuation in targets { continuation.yield(job) } }
    }

    private func finish(_ id: String, _ outcome: Result<(msg: String, result: JSONValue), any Error>, seconds: Double) {
        let (job, targets) = state.withLock { s -> (Job?, [AsyncStream<Job>.Continuation]) in
            guard var job = s.jobs[id] else { return (nil, []) }
            switch outcome {
            case .success(let (msg, result)):
                job.state = .succeeded
                job.msg = msg
                job.result = result
                if job.totalBytes > 0 { job.doneBytes = job.totalBytes }
            case .failure(let error):
                job.state = .failed
                job.msg = String(describing: error)
            }
            job.seconds = seconds
            s.jobs[id] = job
            s.lastPublished[id] = nil
            return (job, Array((s.subscribers.removeValue(forKey: id) ?? [:]).values))
        }
        guard let job else { return }
        for continuation in targets {
            continuation.yield(job)
            continuation.finish()
        }
    }
}

/// Runs blocking work (statfs on shares, reading /proc and state files) on a
/// thread of its own and awaits it, so a slow NFS server never stalls the
/// cooperative pool that serves the other requests.
func onOwnThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        do {
            try startThread(name) { continuation.resume(with: Result { try body() }) }
        } catch {
            continuation.resume(throwing: error)
        }
    }
}
