import Glibc

/// posix_spawn(3) as cachectl starts every other process: `ExternalCommand`'s
/// helpers and the FUSE daemon.
public enum Spawn {
    /// What the child's descriptor is.
    public enum Descriptor: Sendable {
        /// A descriptor of this process, dup2(2)ed onto the child's.
        case inherit(Int32)
        /// /dev/null, opened with these flags.
        case null(Int32)
    }

    /// Where the child runs.
    public enum Detach: Sendable {
        /// A process group of its own, so killing the group kills what it started too.
        case processGroup
        /// A session of its own (setsid), so it outlives this process's terminal.
        case session
        /// This process's group and session, so a signal to the group reaches it too.
        case sameGroup
    }

    /// POSIX_SPAWN_SETSID from glibc's spawn.h (a _GNU_SOURCE macro Swift does not import).
    static let setsid: Int32 = 0x80

    /// Starts `executable` with `arguments` (argv[1...]), the child's descriptors 0, 1,
    /// 2, ... as `descriptors` says (no other is inherited: the caller's are
    /// close-on-exec), default signal handling and an empty signal mask.
    public static func start(
        _ executable: String, arguments: [String], descriptors: [Int32: Descriptor], detach: Detach
    ) throws(CachectlError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (child, descriptor) in descriptors.sorted(by: { $0.key < $1.key }) {
            switch descriptor {
            case .inherit(let fd): posix_spawn_file_actions_adddup2(&actions, fd, child)
            case .null(let flags): posix_spawn_file_actions_addopen(&actions, child, "/dev/null", flags, 0)
            }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Default signal handling and an empty mask, whatever this process changed.
        var defaults = sigset_t()
        sigfillset(&defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        switch detach {
        case .processGroup:
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
        case .session:
            flags |= setsid
        case .sameGroup:
            break
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        // posix_spawn returns the error number instead of setting errno.
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard code == 0 else { throw CachectlError("posix_spawn", path: executable, errno: code) }
        return pid
    }
}
