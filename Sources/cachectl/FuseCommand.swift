import ArgumentParser
import CachectlFUSE
import CachectlMount
import CachectlSystem
import FoundationEssentials
import Glibc

extension CompressionMode: ExpressibleByArgument {}

/// `cachectl fuse mount --passthrough`.
enum PassthroughChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, off
}

struct Fuse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuse",
        abstract: "Serve a directory read-only from an LZ4-compressed RAM pool (where FS-Cache is missing).",
        discussion: """
            For systems without FS-Cache (no cachefiles module, containers, CIFS servers that \
            refuse it): cachectl mounts its own FUSE filesystem that mirrors SOURCE read-only and \
            keeps what was read in a RAM pool of fixed size, in chunks, LZ4-compressed when that \
            saves space. Where FS-Cache works, prefer it (cachectl fscache): it survives reboots \
            and costs no RAM.

            Examples:
              cachectl fuse mount /mnt/nfs/models /models --pool 24G
              cachectl fuse stats /models
              cachectl fuse unmount /models
            """,
        subcommands: [Mount.self, Stats.self, Unmount.self]
    )
}

/// Options shared by the three subcommands: where stats files live.
struct FuseStateOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Directory of the per-mount stats files (default /run/cachectl/fuse for root).", valueName: "dir"))
    var stateDir: String = FuseStatsFile.defaultDirectory
}

/// A path made absolute and resolved, so the stats file name and the mount table agree.
func resolvedDirectory(_ path: String, what: String) throws -> String {
    guard let resolved = realpath(path, nil) else {
        throw CachectlError(.usage, "realpath", path: path, errno: errno, hint: "\(what) must be an existing directory")
    }
    defer { free(resolved) }
    let result = String(cString: resolved)
    var st = stat()
    guard stat(result, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
        throw CachectlError(.usage, "\(what) \(path) is not a directory")
    }
    return result
}

extension Fuse {
    struct Mount: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mount",
            abstract: "Mount a read-only mirror of SOURCE at MOUNTPOINT, cached in RAM.",
            discussion: """
                Reads are served in chunks (--chunk, default 4 MiB) kept in a RAM pool of at \
                most --pool bytes of payload, least recently used chunks evicted first. Chunks \
                are keyed by device and inode, so hard links share them. --compress auto tries \
                LZ4 on a sample of each chunk and keeps it raw when it would save under 10%.

                Opening a file reads its next chunks ahead, and the next --prefetch files of the \
                same directory in name order (the other shards of a model), on background \
                threads. A file changed at the source (size, mtime or ctime) is read again at its next \
                open after the attribute timeout (1 s).

                With --passthrough auto (the default), a file whose chunks are all in the pool \
                is opened in FUSE passthrough mode where the kernel allows it (Linux 6.9+, run \
                as root): the kernel then reads it straight from the pool, as fast as a tmpfs \
                file, without asking the daemon. `cachectl fuse stats` says whether it is on.

                Without --foreground the mirror runs as a daemon (its log is next to its stats \
                file); systemd units should use --foreground. SIGINT/SIGTERM unmount cleanly.

                Examples:
                  cachectl fuse mount /mnt/nfs/models /models --pool 24G
                  cachectl fuse mount /srv/share /mnt/cache --pool 8G --compress off --prefetch 0 --foreground
                """
        )

        @Argument(help: "Directory to mirror (an NFS/CIFS share, any directory).")
        var source: String

        @Argument(help: "Empty directory where the mirror appears.")
        var mountpoint: String

        @Option(help: ArgumentHelp("Most bytes of chunk payload to keep in RAM (K, M, G suffixes).", valueName: "size"))
        var pool: ByteSize

        @Option(help: ArgumentHelp("Cache unit (64K to 64M).", valueName: "size"))
        var chunk: ByteSize = ByteSize(UInt64(MirrorOptions.defaultChunkBytes))

        @Option(help: "auto: LZ4 when a sample shows 10% saving or more; lz4: always; off: never.")
        var compress: CompressionMode = .auto

        @Option(
            help: ArgumentHelp(
                "Files after the opened one in the same directory to read into the pool.", valueName: "n"))
        var prefetch: Int = 2

        @Option(
            help:
                "auto: serve files wholly in the pool by FUSE passthrough when the kernel allows (Linux 6.9+, root); off: the daemon answers every read."
        )
        var passthrough: PassthroughChoice = .auto

        @Flag(help: "Let other users see the mount (non-root needs user_allow_other in /etc/fuse.conf).")
        var allowOther = false

        @Flag(help: "Stay in the foreground (for systemd units and debugging).")
        var foreground = false

        @Flag(help: "Change nothing: check the arguments and say what would be mounted.")
        var check = false

        @Option(help: .hidden)
        var readyFd: Int32 = -1

        @OptionGroup var state: FuseStateOptions
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var source: String
            var mountpoint: String
            var poolBytes: UInt64
            var chunkBytes: UInt64
            var compression: String
            var pid: Int32?
            var statsFile: String
        }

        func run() throws {
            var checked = MirrorOptions(source: source, mountpoint: mountpoint, poolBytes: pool.bytes)
            checked.chunkBytes = Int(min(chunk.bytes, UInt64(Int32.max)))
            checked.prefetchFiles = prefetch
            try checked.validate()
            output.bootstrap()
            let source = try resolvedDirectory(self.source, what: "SOURCE")
            // A mirror whose daemon died (killed, OOM) stays in the mount table and
            // answers ENOTCONN: detach it and mount a new one, so a restart converges.
            let named = Path.absolute(self.mountpoint)
            var detached = 0
            while detached < 8, FuseMountTable.isDeadMirror(named) {
                if check {
                    try CommandOutput.finish(
                        output, changed: true, failed: false, msg: "would remount", data: ["mountpoint": named]
                    ) {
                        "would detach the dead mirror at \(named) (its daemon is gone: ENOTCONN) and mount a new one"
                    }
                    return
                }
                try FuseMountTable.detachDead(named)
                console.warning("\(named): the mirror's daemon was gone (ENOTCONN); detached the dead mount")
                detached += 1
            }
            let mountpoint = try resolvedDirectory(self.mountpoint, what: "MOUNTPOINT")
            guard source != mountpoint else { throw ValidationError("SOURCE and MOUNTPOINT must differ") }
            var options = MirrorOptions(source: source, mountpoint: mountpoint, poolBytes: pool.bytes)
            options.chunkBytes = Int(chunk.bytes)
            options.compression = compress
            options.prefetchFiles = prefetch
            options.passthrough = passthrough == .auto
            options.allowOther = allowOther
            options.statsDirectory = state.stateDir
            let statsFile = FuseStatsFile.path(for: mountpoint, in: state.stateDir)
            var report = Report(
                source: source, mountpoint: mountpoint, poolBytes: pool.bytes, chunkBytes: chunk.bytes,
                compression: compress.rawValue, pid: nil, statsFile: statsFile)

            if FuseMountTable.isMirror(mountpoint) {
                let running = try? FuseStatsFile.read(mountpoint: mountpoint, directory: state.stateDir)
                report.pid = running?.pid
                if let running, running.source != source {
                    throw CachectlError.failed(
                        "fuse mount", path: mountpoint,
                        hint:
                            "a cachectl mirror of \(running.source) is already mounted there; cachectl fuse unmount \(mountpoint) first"
                    )
                }
                try CommandOutput.finish(output, changed: false, failed: false, msg: "already mounted", data: report) {
                    "\(mountpoint): already a cachectl mirror of \(source)"
                }
                return
            }
            if let existing = try MountTable.entry(at: mountpoint) {
                throw CachectlError.failed(
                    "fuse mount", path: mountpoint,
                    hint: "a \(existing.fstype) filesystem is mounted there; choose an empty directory")
            }
            if check {
                try CommandOutput.finish(output, changed: true, failed: false, msg: "would mount", data: report) {
                    "would mount a read-only mirror of \(source) at \(mountpoint) (pool \(pool), chunk \(chunk), compress \(compress.rawValue))"
                }
                return
            }
            try FuseStatsFile.prepareDirectory(state.stateDir)
            if !foreground {
                report.pid = try Daemon.spawn(statsFile: statsFile)
                try CommandOutput.finish(output, changed: true, failed: false, msg: "mounted", data: report) {
                    "mounted a read-only mirror of \(source) at \(mountpoint) (pid \(report.pid ?? 0); stats: cachectl fuse stats \(mountpoint))"
                }
                return
            }
            try serve(options, report: report)
        }

        /// Runs the filesystem in this process until a signal or an unmount.
        private func serve(_ options: MirrorOptions, report: Report) throws {
            var report = report
            let readyFd = self.readyFd
            let output = self.output
            try MirrorMount.serveUntilSignalled(options) { result in
                switch result {
                case .success:
                    report.pid = getpid()
                    if readyFd >= 0 {
                        Daemon.tell(readyFd, "ok \(getpid())")
                    } else {
                        try? CommandOutput.finish(output, changed: true, failed: false, msg: "mounted", data: report) {
                            "mounted a read-only mirror of \(options.source) at \(options.mountpoint); Ctrl-C unmounts"
                        }
                    }
                case .failure(let error):
                    if readyFd >= 0 { Daemon.tell(readyFd, "error \(error)") }
                }
            }
            console.info("unmounted \(options.mountpoint)")
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Show a mirror's pool use, hit rate, bytes served from RAM and source, compression, prefetch.",
            discussion: """
                The mount's daemon rewrites DIR/<escaped mountpoint>.json (systemd-escape --path \
                style) within a second of any change; this command reads it.

                Examples:
                  cachectl fuse stats /models
                  cachectl fuse stats /models --json | jq .compression_ratio
                """
        )

        @Argument(help: "Where the mirror is mounted.")
        var mountpoint: String

        @OptionGroup var state: FuseStateOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            output.bootstrap()
            let mountpoint = Path.absolute(self.mountpoint)
            let path = FuseStatsFile.path(for: mountpoint, in: state.stateDir)
            let stats: FuseStats
            do {
                stats = try FuseStatsFile.read(mountpoint: mountpoint, directory: state.stateDir)
            } catch {
                throw CachectlError.failed(
                    "read stats", path: path,
                    hint:
                        "no cachectl mirror is mounted at \(mountpoint) (or it runs with another --state-dir): \(error)"
                )
            }
            let alive = kill(stats.pid, 0) == 0 || errno == EPERM
            guard alive else {
                throw CachectlError.failed(
                    "fuse stats", path: path,
                    hint:
                        "the daemon (pid \(stats.pid)) is gone; these stats are stale. Remount with cachectl fuse mount"
                )
            }
            try CommandOutput.finish(output, changed: false, failed: false, msg: "ok", data: stats) {
                Self.human(stats)
            }
        }

        static func human(_ s: FuseStats) -> String {
            let lookups = s.hits + s.misses
            let hitRate = lookups == 0 ? "-" : formatFixed(100 * Double(s.hits) / Double(lookups), digits: 1) + "%"
            var lines = [
                "\(s.mountpoint) <- \(s.source) (pid \(s.pid), chunk \(ByteSize.format(s.chunkBytes)), compress \(s.compression))",
                "pool        \(ByteSize.format(s.poolUsedBytes)) of \(ByteSize.format(s.poolLimitBytes)) (peak \(ByteSize.format(s.poolPeakBytes))), \(s.chunks) chunks (\(s.compressedChunks) compressed), overhead ~\(ByteSize.format(s.overheadBytes))",
                "data        \(ByteSize.format(s.cachedBytes)) cached, compression ratio \(formatFixed(s.compressionRatio, digits: 2))x",
                "lookups     \(s.hits) hits, \(s.misses) misses (hit rate \(hitRate)), \(s.inflightWaits) waited for a read in flight",
                "bytes       \(ByteSize.format(s.bytesFromRam)) from RAM, \(ByteSize.format(s.bytesFromSource)) from source",
                "prefetch    \(s.prefetchScheduled) jobs, \(s.prefetchCompleted) chunks read, \(s.prefetchHits) used, \(s.prefetchCancelled) cancelled",
                "evictions   \(s.evictions), invalidations \(s.invalidations)",
                "passthrough \(s.passthrough ?? "-")\(s.passthroughOpens.map { ", \($0) opens (read by the kernel from the pool, not counted above)" } ?? "")",
            ]
            for file in s.files.prefix(10) {
                lines.append(
                    "  \(ByteSize.format(file.cachedBytes)) \(formatFixed(file.compressionRatio, digits: 2))x  \(file.path)"
                )
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Unmount: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unmount",
            abstract: "Unmount a mirror; refuses while files are open in it unless --force.",
            discussion: """
                --force detaches the mount and aborts its FUSE connection: programs still \
                reading get ENOTCONN. Waits up to 10 s for the daemon to exit.

                Examples:
                  cachectl fuse unmount /models
                  cachectl fuse unmount --force /models
                """
        )

        @Argument(help: "Where the mirror is mounted.")
        var mountpoint: String

        @Flag(help: "Unmount even while files are open (they get ENOTCONN).")
        var force = false

        @OptionGroup var state: FuseStateOptions
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var mountpoint: String
            var pid: Int32?
        }

        func run() throws {
            output.bootstrap()
            let mountpoint = Path.absolute(self.mountpoint)
            let running = try? FuseStatsFile.read(mountpoint: mountpoint, directory: state.stateDir)
            var report = Report(mountpoint: mountpoint, pid: running?.pid)
            guard FuseMountTable.isMirror(mountpoint) else {
                if let existing = try MountTable.entry(at: mountpoint) {
                    throw CachectlError.failed(
                        "fuse unmount", path: mountpoint,
                        hint: "that is a \(existing.fstype) mount, not a cachectl mirror; use umount")
                }
                try CommandOutput.finish(output, changed: false, failed: false, msg: "not mounted", data: report) {
                    "\(mountpoint): no cachectl mirror mounted"
                }
                return
            }
            switch try FuseMountTable.unmount(mountpoint, force: force) {
            case .busy:
                throw CachectlError(
                    "umount", path: mountpoint, errno: EBUSY,
                    hint: "files are open in the mirror; close them (fuser -vm \(mountpoint)) or use --force")
            case .unmounted:
                if let pid = running?.pid {
                    let deadline = Monotonic.now() + 10
                    while kill(pid, 0) == 0 && Monotonic.now() < deadline { usleep(20_000) }
                    if kill(pid, 0) == 0 {
                        report.pid = pid
                        console.warning("daemon pid \(pid) still running")
                    }
                }
                try CommandOutput.finish(output, changed: true, failed: false, msg: "unmounted", data: report) {
                    "unmounted \(mountpoint)"
                }
            }
        }
    }
}

/// Starts `cachectl fuse mount ... --foreground` as a daemon in its own session
/// and waits until it has mounted (or failed), so the parent's exit status tells
/// the truth. The child reports on a pipe passed as fd 3.
enum Daemon {
    static func spawn(statsFile: String) throws -> Int32 {
        var pipeFds: [Int32] = [0, 0]
        _ = try sys("pipe") { pipe(&pipeFds) }
        for fd in pipeFds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // dup2 onto fd 3 clears it there
        let logPath = String(statsFile.dropLast(".json".count)) + ".log"
        // The state directory was checked (FuseStatsFile.prepareDirectory); the log
        // is opened here, never through a symlink, and handed to the child.
        let logFd = try FuseStatsFile.openLog(logPath)
        defer { close(logFd) }

        // Nothing else is inherited: a descriptor our caller left open (a pipe that
        // Ansible or a test reads our output from) must not stay open for the
        // daemon's lifetime, or the caller never sees end of file.
        closeOnExec(from: 3)
        let executable = (try? Path.linkTarget(of: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var arguments = Array(CommandLine.arguments.dropFirst()).filter { $0 != "--json" }
        arguments += ["--foreground", "--ready-fd", "3"]
        defer { close(pipeFds[0]) }
        let spawned = Result { () throws(CachectlError) in
            try Spawn.start(
                executable, arguments: arguments,
                descriptors: [0: .null(O_RDONLY), 1: .null(O_WRONLY), 2: .inherit(logFd), 3: .inherit(pipeFds[1])],
                detach: .session)
        }
        close(pipeFds[1])
        let pid = try spawned.get()

        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let n = retryingEINTR { read(pipeFds[0], &buffer, buffer.count) }
            if n <= 0 { break }
            reply += buffer[0..<n]
        }
        let text = String(decoding: reply, as: UTF8.self).trimmingWhitespace()
        if text.hasPrefix("ok") { return pid }
        var exitStatus: Int32 = 0
        waitpid(pid, &exitStatus, 0)
        let detail =
            text.hasPrefix("error ") ? String(text.dropFirst(6)) : "the daemon exited without mounting; see \(logPath)"
        throw CachectlError.failed("fuse mount", hint: detail)
    }

    /// Marks every descriptor from `lowest` up close-on-exec.
    static func closeOnExec(from lowest: Int32) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in names {
            guard let fd = Int32(name), fd >= lowest else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// The child's side: one line on the ready pipe, then close it.
    static func tell(_ fd: Int32, _ message: String) {
        let line = message + "\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}
