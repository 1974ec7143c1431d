import CCachectlShims
import Glibc

/// Who may read a file: copies that keep it, and opening a file with another
/// user's rights.
public enum FileAccess {
    /// The POSIX access ACL, as the kernel stores it in an xattr.
    public static let accessACL = "system.posix_acl_access"

    /// Gives `copy` the owner, group, permission bits (setuid/setgid/sticky
    /// included) and access ACL of `original`, so the copy grants nobody more than
    /// the original does. Throws when any of them cannot be kept (for example a
    /// filesystem without ACLs under a file that has one): the caller must then
    /// not publish the copy.
    public static func copy(from original: OpenFile, to copy: OpenFile) throws(SystemError) {
        let st = try original.status()
        // chown first: it clears setuid/setgid, which fchmod then puts back.
        _ = try sys("chown", copy.path) { fchown(copy.fd, st.st_uid, st.st_gid) }
        _ = try sys("chmod", copy.path) { fchmod(copy.fd, st.st_mode & 0o7777) }
        guard let acl = try accessControlList(of: original) else { return }
        let code = acl.withUnsafeBytes { raw in fsetxattr(copy.fd, accessACL, raw.baseAddress, raw.count, 0) }
        if code != 0 {
            throw SystemError(
                "set the ACL of", path: copy.path, errno: errno,
                hint: "\(original.path) has an ACL this filesystem cannot keep; the copy would grant more than the original")
        }
    }

    /// The raw `system.posix_acl_access` value, nil when the file has none (or its
    /// filesystem has no POSIX ACLs).
    public static func accessControlList(of file: OpenFile) throws(SystemError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { raw in fgetxattr(file.fd, accessACL, raw.baseAddress, raw.count) }
        if n < 0 {
            let code = errno
            if code == ENODATA || code == EOPNOTSUPP { return nil }
            throw SystemError("read the ACL of", path: file.path, errno: code)
        }
        return Array(buffer[0..<n])
    }
}
