import CCachectlShims
import Glibc

/// Runs another program (mkfs, cachefilesd, systemctl, ...) and captures its output.
///
/// Every run has a deadline (``defaultTimeout`` unless set): a program that does not
/// finish in time, or leaves a child holding its output open, is killed with its
/// whole process group and the run throws ETIMEDOUT naming the command. The child
/// is started with posix_spawn(3) in a process group of its own and reaped with
/// waitpid(WNOHANG) from a poll(2) loop in the calling thread, so nothing here can
/// block without a bound (Foundation's Process wait was seen to hang forever).
public struct ExternalCommand: Sendable {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var succeeded: Bool { status == 0 }
    }

    /// Seconds a command may run when the caller does not say: longer than any
    /// mkfs of a RAM disk or systemctl restart takes, short enough that a hung
    /// mount helper does not stall `apply` past systemd's own start timeout.
    public static let defaultTimeout: Double = 120

    public var arguments: [String]
    /// Seconds before the command's process group is killed.
    public var timeout: Double

    public init(_ arguments: [String], timeout: Double = ExternalCommand.defaultTimeout) {
        precondition(!arguments.isEmpty)
        self.arguments = arguments
        self.timeout = timeout
    }

    /// Directories searched after $PATH: root's tools live in sbin, which a
    /// non-login root shell (cron, Ansible) may not have on its PATH.
    static let systemDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The absolute path of `program`, or nil when it is not installed.
    public static func find(_ program: String) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        let path = getenv("PATH").map { String(cString: $0).split(separator: ":").map(String.init) } ?? []
        return find(program, in: path + systemDirectories)
    }

    /// The first executable `program` in `directories`, in order (no $PATH).
    public static func find(_ program: String, in directories: [String]) -> String? {
        directories.map { $0 + "/" + program }.first { access($0, X_OK) == 0 }
    }

    /// Runs the command to completion. Throws when the program is missing, cannot
    /// start or runs past the timeout; a non-zero exit is returned in the result.
    public func run(input: String? = nil) throws(CachectlError) -> Result {
        guard let executable = Self.find(arguments[0]) else {
            throw CachectlError.failed(
                "run \(arguments[0])", hint: "\(arguments[0]) is not installed or not on PATH")
        }
        let deadline = Monotonic.now() + timeout

        // stdin: the input in a sealed memory file (no pipe to block on or SIGPIPE), else /dev/null.
        let stdinFD: Int32
        if let input {
            stdinFD = try sys("memfd_create", arguments[0]) { cachectl_memfd("cachectl-stdin") }
            let bytes = Array(input.utf8)
            do throws(CachectlError) {
                var done = 0
                while done < bytes.count {
                    done += try sys("write", "stdin of \(arguments[0])") {
                        bytes.withUnsafeBytes { raw in write(stdinFD, raw.baseAddress! + done, raw.count - done) }
                    }
                }
                _ = try sys("lseek", "stdin of \(arguments[0])") { lseek(stdinFD, 0, SEEK_SET) }
            } catch {
                close(stdinFD)
                throw error
            }
        } else {
            stdinFD = try sys("open", "/dev/null") { open("/dev/null", O_RDONLY | O_CLOEXEC) }
        }
        defer { close(stdinFD) }

        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        _ = try sys("pipe2") { cachectl_pipe_cloexec(&outPipe) }
        do throws(CachectlError) {
            _ = try sys("pipe2") { cachectl_pipe_cloexec(&errPipe) }
        } catch {
            close(outPipe[0])
            close(outPipe[1])
            throw error
        }

        // A process group of its own, so a timeout kills the helpers it started too.
        let spawned: Swift.Result<pid_t, CachectlError>
        do throws(CachectlError) {
            spawned = .success(
                try Spawn.start(
                    executable, arguments: Array(arguments.dropFirst()),
                    descriptors: [0: .inherit(stdinFD), 1: .inherit(outPipe[1]), 2: .inherit(errPipe[1])],
                    detach: .processGroup))
        } catch {
            spawned = .failure(error)
        }
        close(outPipe[1])
        close(errPipe[1])
        defer {
            close(outPipe[0])
            close(errPipe[0])
        }
        let pid = try spawned.get()

        var stdoutBytes: [UInt8] = []
        var stderrBytes: [UInt8] = []
        var reading = [true, true]
        var status: Int32?
        // After the program exits, a child it left behind may still hold the pipes:
        // read on for a moment, then stop waiting for them.
        var pipesDeadline = deadline
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        while status == nil || reading[0] || reading[1] {
            if status == nil {
                var raw: Int32 = 0
                let reaped = retryingEINTR { waitpid(pid, &raw, WNOHANG) }
                if reaped == pid {
                    status = Self.exitStatus(raw)
                    pipesDeadline = min(deadline, Monotonic.now() + 1)
                }
            }
            let now = Monotonic.now()
            if status == nil && now >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                var raw: Int32 = 0
                _ = retryingEINTR { waitpid(pid, &raw, 0) }  // SIGKILL cannot be caught: this returns
                throw CachectlError(
                    "run \(arguments.joined(separator: " "))", errno: ETIMEDOUT,
                    hint: "still running after \(Self.format(timeout)) s; killed its process group")
            }
            if status != nil && now >= pipesDeadline { break }
            if !reading[0] && !reading[1] {
                usleep(10_000)  // output closed, the program not yet reaped
                continue
            }
            var fds = [
                pollfd(fd: reading[0] ? outPipe[0] : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: reading[1] ? errPipe[0] : -1, events: Int16(POLLIN), revents: 0),
            ]
            // Wake at least every 50 ms to reap the program and check the deadline.
            let ready = poll(&fds, 2, 50)
            if ready <= 0 { continue }
            for index in 0..<2 where reading[index] && fds[index].revents != 0 {
                let fd = index == 0 ? outPipe[0] : errPipe[0]
                let n = retryingEINTR { read(fd, buffer.baseAddress, buffer.count) }
                if n > 0 {
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    if index == 0 {
                        stdoutBytes.append(contentsOf: chunk)
                    } else {
                        stderrBytes.append(contentsOf: chunk)
                    }
                } else {
                    reading[index] = false
                }
            }
        }
        return Result(
            status: status ?? -1,
            stdout: String(decoding: stdoutBytes, as: UTF8.self),
            stderr: String(decoding: stderrBytes, as: UTF8.self))
    }

    /// Runs the command and throws when it exits non-zero, quoting its stderr.
    @discardableResult
    public func check(input: String? = nil, hint: String? = nil) throws(CachectlError) -> Result {
        let result = try run(input: input)
        guard result.succeeded else {
            let detail = result.stderr.trimmingWhitespace()
            throw CachectlError.failed(
                "\(arguments.joined(separator: " ")) exited \(result.status)" + (detail.isEmpty ? "" : ": \(detail)"),
                hint: hint)
        }
        return result
    }

    /// The exit code, or 128 + the signal that ended it (as a shell reports it).
    static func exitStatus(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
