import CachectlSystem
import Glibc

/// mkdtemp(3): a new, empty directory `PARENT/cachectl-NAME-XXXXXX` (mode 0700)
/// for one test's files. /var/tmp where a test needs a disk filesystem, not tmpfs.
public func makeTemporaryDirectory(_ name: String, in parent: String = "/tmp") throws(CachectlError) -> String {
    var template = Array("\(parent)/cachectl-\(name)-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw CachectlError("mkdtemp", path: parent, errno: errno) }
    return String(cString: made)
}
