import Glibc

/// The one error every cachectl module throws: what kind of failure it is (``Code``,
/// which alone decides the exit status), the field of the input at fault or the
/// path of the object, the errno where there is one, and what to do next.
///
/// Input errors name their field as a ``FieldPath`` in the YAML schema's words
/// (`shares[0].nconnect`); the CLI shows the same field as its flag (`--nconnect`),
/// so no layer has to read a message to learn which value was wrong.
public struct CachectlError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure, as a caller acts on it (after containerization's
    /// `ContainerizationError.Code` and swift-nio's `FileSystemError.Code`).
    public enum Code: String, Sendable, Equatable, Codable, CaseIterable {
        /// A bad value or combination in the input: a flag, a YAML value, a file's content.
        case usage
        /// The path, device, tier or object does not exist.
        case notFound = "not_found"
        /// Not allowed: run as root, or fix the permissions.
        case permission
        /// In use: something holds the mount, device, lock or object.
        case busy
        /// Already there, and not cachectl's to replace.
        case exists
        /// Out of space or memory, or over a limit.
        case noSpace = "no_space"
        /// The kernel or the system lacks the feature, module or tool.
        case unsupported
        /// A server or target did not answer.
        case unreachable
        /// An I/O error from a device or filesystem.
        case io
        /// The system is not in a state the request can be applied to.
        case conflict
        /// Any other refusal by a system call or kernel interface.
        case kernel
        /// A step that did not hold, with no errno (an external command, a check).
        case failed

        /// The code an errno stands for.
        public init(errno code: Int32) {
            switch code {
            case EPERM, EACCES: self = .permission
            case ENOENT, ENXIO, ESRCH: self = .notFound
            case EBUSY, ETXTBSY, EAGAIN, EALREADY, EINPROGRESS: self = .busy
            case EEXIST: self = .exists
            case ENOSPC, ENOMEM, EDQUOT, EFBIG, EMFILE, ENFILE, E2BIG: self = .noSpace
            case ENOSYS, EOPNOTSUPP, ENODEV, EXDEV: self = .unsupported
            case ETIMEDOUT, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ESTALE: self = .unreachable
            case EIO: self = .io
            case ENOTEMPTY, EROFS, ENOTDIR, EISDIR, ELOOP: self = .conflict
            default: self = .kernel
            }
        }

        /// The process exit status: 2 for usage errors, 1 for every other failure
        /// (the CLI's `main` is the one place that exits with it).
        public var exitStatus: Int32 { self == .usage ? 2 : 1 }
    }

    public var code: Code
    /// What failed: an operation (`open`, `mount tmpfs on`) followed by ``path``,
    /// or, for an input error, what is wrong with ``field``, naming it in the schema's words.
    public var message: String
    /// The file, device or object it concerns.
    public var path: String?
    /// The input value at fault, in the YAML schema's words.
    public var field: FieldPath?
    public var errno: Int32?
    /// What to do next.
    public var hint: String?

    /// A failed system call or kernel interface: the code follows the errno, the
    /// hint the call's man page (``Syscall/hint(_:errno:)``) unless given.
    public init(_ message: String, path: String? = nil, errno: Int32? = nil, hint: String? = nil) {
        self.code = errno.map(Code.init(errno:)) ?? .failed
        self.message = message
        self.path = path
        self.errno = errno
        self.hint = hint ?? errno.flatMap { Syscall.hint(message, errno: $0) }
    }

    /// Any error by its code.
    public init(
        _ code: Code, _ message: String, field: FieldPath? = nil, path: String? = nil, errno: Int32? = nil,
        hint: String? = nil
    ) {
        self.code = code
        self.message = message
        self.field = field
        self.path = path
        self.errno = errno
        self.hint = hint
    }

    /// Bad input: `message` says what is wrong with `field` and names it in the
    /// schema's words (`jobs must be between 1 and 256, got 0`).
    public static func usage(_ field: FieldPath?, _ message: String, hint: String? = nil) -> CachectlError {
        CachectlError(.usage, message, field: field, hint: hint)
    }

    /// An error with no errno: a precondition about the system that does not hold.
    public static func failed(_ what: String, path: String? = nil, hint: String? = nil) -> CachectlError {
        CachectlError(.failed, what, path: path, hint: hint)
    }

    /// The same error about a field one level deeper in the input: an export's
    /// `port` becomes `nvmeof.exports[2].port`.
    public func within(_ prefix: FieldPath) -> CachectlError {
        var error = self
        error.field = prefix + (field ?? [])
        return error
    }

    /// The text with the field spelled as `naming` says (nil: not shown).
    public func text(naming: (FieldPath) -> String?) -> String {
        var text = ""
        if let field, let name = naming(field) { text += name + ": " }
        text += message
        if let path { text += " \(path)" }
        if let errno { text += ": \(Errno.message(errno)) (\(Errno.name(errno)))" }
        if let hint { text += "; \(hint)" }
        return text
    }

    /// As the CLI shows it: the field as its flag.
    public var description: String { text(naming: \.flag) }
}

/// Where a value sits in the input, in the YAML schema's words: `["shares", 0, "nconnect"]`.
/// The YAML layer shows it as `shares[0].nconnect`, the CLI as the flag `--nconnect`.
public struct FieldPath: Sendable, Hashable, ExpressibleByArrayLiteral, CustomStringConvertible {
    public enum Component: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
        case key(String)
        case index(Int)
        public init(stringLiteral value: String) { self = .key(value) }
        public init(integerLiteral value: Int) { self = .index(value) }
    }

    public var components: [Component]

    public init(_ components: [Component]) { self.components = components }
    public init(arrayLiteral elements: Component...) { self.components = elements }

    public static func + (lhs: FieldPath, rhs: FieldPath) -> FieldPath { FieldPath(lhs.components + rhs.components) }

    /// The innermost key: `nconnect` in `shares[0].nconnect`.
    public var key: String? {
        for component in components.reversed() { if case .key(let name) = component { return name } }
        return nil
    }

    /// `shares[0].nconnect`.
    public var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let name): text += (text.isEmpty ? "" : ".") + name
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    /// The CLI's flag for the innermost key: the key in kebab-case (`allow_any_host`
    /// → `--allow-any-host`), or the CLI's own spelling where it differs. Nil for
    /// `name`, which every command takes as an argument, not a flag.
    public var flag: String? {
        guard let key else { return nil }
        let keys = components.compactMap { if case .key(let name) = $0 { name } else { nil } }
        if keys.count > 1, let spelled = Self.flagSpellings[keys.suffix(2).joined(separator: ".")] { return spelled }
        if let spelled = Self.flagSpellings[key] { return spelled }
        return "--" + key.replacing("_", with: "-")
    }

    /// Keys (or `section.key`) whose CLI flag is not the kebab-case key.
    static let flagSpellings: [String: String?] = [
        "name": nil, "models.dir": "--models-dir", "address": "--addr", "filesystem": "--fs", "host_nqn": "--hostnqn",
        "allowed_hosts": "--allow-host",
    ]
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
        case ETXTBSY: "ETXTBSY"
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
        case EDQUOT: "EDQUOT"
        case ETIMEDOUT: "ETIMEDOUT"
        case ECONNREFUSED: "ECONNREFUSED"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETUNREACH: "ENETUNREACH"
        case ESTALE: "ESTALE"
        case EALREADY: "EALREADY"
        case EINPROGRESS: "EINPROGRESS"
        default: "errno \(code)"
        }
    }
}

/// What to do after a system call fails, by call and errno, as each call's man
/// page explains the errno (after swift-nio's `FileSystemError+Syscall.swift`).
/// The call is the first word of the error's message (`mount tmpfs on` → mount).
public enum Syscall {
    public static func hint(_ operation: String, errno code: Int32) -> String? {
        let call = operation.prefix { $0 != " " }
        switch (call, code) {
        // mount(2): EBUSY "source is already mounted" or "target is busy";
        // ENODEV "filesystemtype not configured in the kernel".
        case ("mount", EBUSY): return "it is already mounted, or the mount point is in use"
        case ("mount", ENODEV):
            return "this kernel lacks that filesystem type; load its module (modprobe) or install it"
        // umount(2): EBUSY "target could not be unmounted because it is busy".
        case ("umount", EBUSY), ("remount", EBUSY):
            return "files under it are open; close them (see `cachectl mounts` and fuser -vm), then try again"
        // rename(2): EXDEV "oldpath and newpath are not on the same mounted filesystem".
        case ("rename", EXDEV): return "both paths must be on one filesystem"
        // mlock(2): ENOMEM "exceed the RLIMIT_MEMLOCK limit"; EPERM "not privileged
        // and RLIMIT_MEMLOCK is 0"; EAGAIN "some of the range could not be locked".
        case ("mlock", ENOMEM), ("mlock", EPERM), ("mlock", EAGAIN):
            return "raise the locked-memory limit (ulimit -l, LimitMEMLOCK= in a unit) or run as root"
        // flock(2): EWOULDBLOCK "the file is locked and LOCK_NB was selected".
        case ("flock", EWOULDBLOCK): return "another cachectl holds the lock; wait for it to finish"
        // open(2): ELOOP "O_NOFOLLOW was specified but pathname was a symbolic link".
        case ("open", ELOOP):
            return "it is a symbolic link, which cachectl does not follow there; replace it with the file"
        // mkdir(2): EEXIST "pathname already exists (not necessarily as a directory)".
        case ("mkdir", EEXIST): return "something else is already at that path; move it away"
        // rmdir(2): ENOTEMPTY/EBUSY "not empty" / "in use as a mount point".
        case ("rmdir", ENOTEMPTY), ("rmdir", EBUSY): return "it is not empty or is in use; see what is in it"
        // write(2) to sysfs and configfs: the attribute's store() refuses with EINVAL.
        case ("write", EINVAL): return "the kernel refused that value"
        default: return defaultHint(code)
        }
    }

    /// What to do next, for the errnos whose remedy does not depend on the call (errno(3)).
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
/// and turns a failure into a ``CachectlError`` naming `operation` and `path`.
@inline(__always)
public func sys<T: FixedWidthInteger>(
    _ operation: String, _ path: String? = nil, hint: String? = nil, _ body: () -> T
) throws(CachectlError) -> T {
    let result = retryingEINTR(body)
    if result == -1 {
        let code = errno  // saved before anything else can overwrite it
        throw CachectlError(operation, path: path, errno: code, hint: hint)
    }
    return result
}
