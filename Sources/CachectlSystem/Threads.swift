import CCachectlShims
import Glibc

/// Threads and a condition variable of cachectl's own, on POSIX threads: blocking
/// syscalls (pread, FUSE's loop, accept) run here, never on Swift's cooperative pool.
/// (Foundation's `Thread` and `NSCondition` would do the same, but they bring all of
/// Foundation and ICU into the binary: README, "The binary".)

/// Starts `body` on a new detached thread named `name` (the kernel keeps 15 bytes of
/// it: `ps -L`, `top -H`). `stackSize` 0 means the default (RLIMIT_STACK).
/// Fails only when the kernel refuses a thread (EAGAIN: RLIMIT_NPROC, memory).
public func startThread(_ name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void)
    throws(CachectlError)
{
    final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) { (self.name, self.body) = (name, body) }
    }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    if stackSize > 0 { pthread_attr_setstacksize(&attributes, stackSize) }
    let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    let code = pthread_create(
        &thread, &attributes,
        { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            cachectl_set_thread_name(start.name)
            start.body()
            return nil
        }, start)
    if code != 0 {
        Unmanaged<Start>.fromOpaque(start).release()
        throw CachectlError("pthread_create", path: name, errno: code)
    }
}

/// A mutex with a condition variable (what `NSCondition` is): `lock`, then `wait`
/// in a loop on the predicate, `broadcast` after changing it. Timed waits use the
/// monotonic clock, so a clock change does not stretch or cut them.
public final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Called with the lock held; returns with it held.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Like `wait()`, until `deadline` (seconds on CLOCK_MONOTONIC, `Monotonic.now()`);
    /// false once the deadline has passed.
    @discardableResult
    public func wait(until deadline: Double) -> Bool {
        let whole = deadline.rounded(.down)
        var time = timespec(tv_sec: Int(whole), tv_nsec: Int((deadline - whole) * 1e9))
        return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
    }

    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }
}
