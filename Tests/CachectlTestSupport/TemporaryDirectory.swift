import CachectlSystem
import Glibc

/// mkdtemp(3): a new, empty directory `PARENT/cachectl-NAME-pPID-XXXXXX` (mode 0700)
/// for one test's files. /var/tmp where a test needs a disk filesystem, not tmpfs.
/// The first call in a process removes the directories of test processes that
/// ended without cleaning up (killed by a timeout, an abort): those whose PID no
/// longer runs, made by this user.
public func makeTemporaryDirectory(_ name: String, in parent: String = "/tmp") throws(CachectlError) -> String {
    AbandonedScratch.sweepOnce()
    var template = Array("\(parent)/cachectl-\(name)-p\(getpid())-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw CachectlError("mkdtemp", path: parent, errno: errno) }
    return String(cString: made)
}

enum AbandonedScratch {
    static let parents = ["/tmp", "/var/tmp"]
    private static let swept: Void = {
        for parent in parents {
            for name in (try? Path.entries(of: parent)) ?? [] {
                guard let pid = owner(of: name), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
                let path = parent + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == geteuid() else { continue }
                _ = try? ExternalCommand(["rm", "-rf", "--one-file-system", path]).run()
            }
        }
    }()

    static func sweepOnce() { _ = swept }

    /// The PID in `cachectl-NAME-pPID-XXXXXX`, or nil for any other name.
    static func owner(of name: String) -> pid_t? {
        guard name.hasPrefix("cachectl-"), name.count > 8 else { return nil }
        let parts = name.split(separator: "-")
        guard parts.count >= 4, parts.last?.count == 6, let tag = parts.dropLast().last, tag.first == "p" else {
            return nil
        }
        return pid_t(tag.dropFirst())
    }
}
