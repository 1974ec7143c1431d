import Glibc

/// A failed system call or kernel interface, with what a person needs to act on it:
/// the operation, the path or object, the errno, and the next step.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public var operation: String
    public var path: String?
    public var errno: Int32?
    public var hint: String?

    public init(_ operation: String, path: String? = nil, errno: Int32? = nil, hint: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.hint = hint ?? errno.flatMap(Errno.defaultHint)
    }

    /// An error with no errno: a precondition about the system that does not hold.
    public static func failed(_ what: String, path: String? = nil, hint: String? = nil) -> SystemError {
        SystemError(what, path: path, errno: nil, hint: hint)
    }

    public var description: String {
        var text = operation
        if let path { text += " \(path)" }
        if let errno { text += ": \(Errno.message(errno)) (\(Errno.name(errno)))" }
        if let hint { text += "; \(hint)" }
        return text
    }
}

/// errno names and messages, so errors read the same on every machine.
public enum Errno {
    public static func message(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    public static func name(_ code: Int32) -> String {
        switch code {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case ESRCH: "ESRCH"
        case EINTR: "EINTR"
        case EIO: "EIO"
        case ENXIO: "ENXIO"
        case E2BIG: "E2BIG"
        case EBADF: "EBADF"
        case EAGAIN: "EAGAIN"
        case ENOMEM: "ENOMEM"
        case EACCES: "EACCES"
        case EFAULT: "EFAULT"
        case EBUSY: "EBUSY"
        case EEXIST: "EEXIST"
        case EXDEV: "EXDEV"
        case ENODEV: "ENODEV"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        case EINVAL: "EINVAL"
        case ENFILE: "ENFILE"
        case EMFILE: "EMFILE"
        case EFBIG: "EFBIG"
        case ENOSPC: "ENOSPC"
        case ESPIPE: "ESPIPE"
        case EROFS: "EROFS"
        case ENAMETOOLONG: "ENAMETOOLONG"
        case ENOSYS: "ENOSYS"
        case ENOTEMPTY: "ENOTEMPTY"
        case ELOOP: "ELOOP"
        case ENODATA: "ENODATA"
        case EOPNOTSUPP: "EOPNOTSUPP"
        case ETIMEDOUT: "ETIMEDOUT"
        case ECONNREFUSED: "ECONNREFUSED"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ESTALE: "ESTALE"
        case EALREADY: "EALREADY"
        case EINPROGRESS: "EINPROGRESS"
        default: "errno \(code)"
        }
    }

    /// What to do next, for the errnos whose remedy does not depend on the call.
    static func defaultHint(_ code: Int32) -> String? {
        switch code {
        case EACCES, EPERM: "run as root, or check the permissions of the path"
        case ENOENT: "check that the path exists"
        case ENOSPC: "free space on that filesystem, or choose a smaller size"
        case EROFS: "the filesystem is read-only"
        case ENOMEM: "not enough memory; free some, or use a smaller size"
        case ENOSYS: "this kernel does not have that system call"
        case EBUSY: "something is using it; stop what holds it, then try again"
        default: nil
        }
    }
}

/// Runs `body` again while it fails with EINTR; returns its last result.
@inline(__always)
public func retryingEINTR<T: FixedWidthInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}

/// Calls a syscall-shaped function (-1 and errno on failure), retrying EINTR,
/// and turns a failure into a ``SystemError`` naming `operation` and `path`.
@inline(__always)
public func sys<T: FixedWidthInteger>(
    _ operation: String, _ path: String? = nil, hint: String? = nil, _ body: () -> T
) throws(SystemError) -> T {
    let result = retryingEINTR(body)
    if result == -1 {
        let code = errno  // saved before anything else can overwrite it
        throw SystemError(operation, path: path, errno: code, hint: hint)
    }
    return result
}
