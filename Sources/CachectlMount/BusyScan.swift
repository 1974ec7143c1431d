import CachectlSystem
import Glibc

/// A process that holds something under a mount point, so unmounting it would fail (EBUSY).
public struct MountUser: Sendable, Equatable, Codable, CustomStringConvertible {
    public var pid: Int32
    public var command: String
    /// What it holds: `cwd`, `root`, `fd 3 /mnt/models/a.gguf`, `mmap /mnt/models/b.gguf`.
    public var holds: [String]

    public var description: String { "\(command) (pid \(pid)): \(holds.prefix(3).joined(separator: ", "))" }
}

/// Finds the processes using a mount, the way fuser -m does: open files
/// (/proc/PID/fd), working and root directories (/proc/PID/cwd, root) and
/// mapped files (/proc/PID/maps). It matches on paths read with readlink(2)
/// and on the device in maps — never stat(2) on the files, which could hang on
/// an unreachable NFS server.
public enum BusyScan {
    public static func users(
        of mountPoint: String, device: DeviceNumber?, proc: String = "/proc"
    ) -> [MountUser] {
        let root = normalizedMountPoint(mountPoint)
        func isUnder(_ path: String) -> Bool {
            let clean = path.hasSuffix(" (deleted)") ? String(path.dropLast(10)) : path
            return root == "/" || clean == root || clean.hasPrefix(root + "/")
        }
        let me = getpid()
        var users: [MountUser] = []
        for pid in processIDs(proc: proc) where pid != me {
            let base = "\(proc)/\(pid)"
            var holds: [String] = []
            for link in ["cwd", "root"] {
                if let target = try? Path.linkTarget(of: base + "/" + link), isUnder(target),
                    !(link == "root" && target == "/")
                {
                    holds.append(link)
                }
            }
            for fd in directoryEntries(base + "/fd") {
                if let target = try? Path.linkTarget(of: base + "/fd/" + fd), target.hasPrefix("/"), isUnder(target) {
                    holds.append("fd \(fd) \(target)")
                }
            }
            if let maps = try? AtomicFile.readText(base + "/maps") {
                var seen = Set<String>()
                for line in maps.split(separator: "\n") {
                    // address perms offset dev inode path — dev is hex MAJ:MIN.
                    let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                    guard fields.count == 6 else { continue }
                    let path = fields[5].trimmingWhitespace()
                    let devParts = fields[3].split(separator: ":")
                    let onDevice =
                        device.map { device in
                            devParts.count == 2 && UInt32(devParts[0], radix: 16) == device.major
                                && UInt32(devParts[1], radix: 16) == device.minor
                        } ?? false
                    if (onDevice || (path.hasPrefix("/") && isUnder(path))) && seen.insert(path).inserted {
                        holds.append("mmap \(path)")
                    }
                }
            }
            if !holds.isEmpty {
                let command = (try? AtomicFile.readText(base + "/comm"))?.trimmingWhitespace() ?? "?"
                users.append(MountUser(pid: pid, command: command, holds: holds))
            }
        }
        return users
    }

    static func processIDs(proc: String) -> [Int32] { Processes.ids(proc: proc) }

    static func directoryEntries(_ path: String) -> [String] {
        (try? Path.entries(of: path)) ?? []
    }

}

/// The process table, read with opendir(3) on /proc (Foundation's directory
/// listing came back empty for /proc in the test bed's guest).
public enum Processes {
    public static func ids(proc: String = "/proc") -> [Int32] {
        BusyScan.directoryEntries(proc).compactMap { Int32($0) }.sorted()
    }

    /// /proc/PID/comm: the command name (15 characters at most).
    public static func command(of pid: Int32, proc: String = "/proc") -> String? {
        (try? AtomicFile.readText("\(proc)/\(pid)/comm"))?.trimmingWhitespace()
    }

    /// PIDs whose command name is `name`, like pidof: a zombie (exited, not yet
    /// reaped by its parent) does not count.
    public static func named(_ name: String, proc: String = "/proc") -> [Int32] {
        ids(proc: proc).filter { command(of: $0, proc: proc) == name && !isZombie($0, proc: proc) }
    }

    /// /proc/PID/stat's state (the field after the command's closing parenthesis) is Z.
    static func isZombie(_ pid: Int32, proc: String) -> Bool {
        guard let stat = try? AtomicFile.readText("\(proc)/\(pid)/stat"),
            let paren = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: paren)...].trimmingWhitespace().hasPrefix("Z")
    }
}
