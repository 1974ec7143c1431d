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
    public static func copy(from original: OpenFile, to copy: OpenFile) throws(CachectlError) {
        let st = try original.status()
        // chown first: it clears setuid/setgid, which fchmod then puts back.
        _ = try sys("chown", copy.path) { fchown(copy.fd, st.st_uid, st.st_gid) }
        _ = try sys("chmod", copy.path) { fchmod(copy.fd, st.st_mode & 0o7777) }
        guard let acl = try accessControlList(of: original) else { return }
        let code = acl.withUnsafeBytes { raw in fsetxattr(copy.fd, accessACL, raw.baseAddress, raw.count, 0) }
        if code != 0 {
            throw CachectlError(
                "set the ACL of", path: copy.path, errno: errno,
                hint:
                    "\(original.path) has an ACL this filesystem cannot keep; the copy would grant more than the original"
            )
        }
    }

    /// Sets the raw `system.posix_acl_access` value of `path` (links followed).
    public static func setAccessControlList(_ acl: [UInt8], on path: String) throws(CachectlError) {
        _ = try sys("set the ACL of", path) {
            acl.withUnsafeBytes { raw in setxattr(path, accessACL, raw.baseAddress, raw.count, 0) }
        }
    }

    /// The raw `system.posix_acl_access` value, nil when the file has none (or its
    /// filesystem has no POSIX ACLs).
    public static func accessControlList(of file: OpenFile) throws(CachectlError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { raw in fgetxattr(file.fd, accessACL, raw.baseAddress, raw.count) }
        if n < 0 {
            let code = errno
            if code == ENODATA || code == EOPNOTSUPP { return nil }
            throw CachectlError("read the ACL of", path: file.path, errno: code)
        }
        return Array(buffer[0..<n])
    }

    /// Opens `path` read-only with the rights of `uid` (its primary group `gid`
    /// and, when it has a passwd entry, its supplementary groups) instead of
    /// root's: every directory search and the file's mode and ACL are checked by
    /// the kernel as that user, and links are followed only as far as they may.
    /// EACCES means that user could not read it.
    public static func open(_ path: String, as uid: uid_t, gid: gid_t) throws(CachectlError) -> OpenFile {
        var groups = supplementaryGroups(of: uid, gid: gid)
        let fd = cachectl_open_as(path, O_RDONLY, uid, gid, &groups, groups.count)
        if fd < 0 {
            let code = errno
            throw CachectlError(
                "open as uid \(uid)", path: path, errno: code,
                hint: code == EACCES || code == EPERM
                    ? "uid \(uid) may not read it, so cachectl will not copy it where that user could" : nil)
        }
        return OpenFile(adopting: fd, path: path)
    }

    /// `gid` and the groups /etc/group lists `uid`'s user in (getgrouplist(3)).
    static func supplementaryGroups(of uid: uid_t, gid: gid_t) -> [gid_t] {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name
        else {
            return [gid]
        }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, gid, &groups, &count) >= 0 else { return [gid] }
        }
        return Array(groups.prefix(Int(count)))
    }
}
