import CLinuxFS
import CachectlSystem
import Glibc

/// A finding about the cache directory or the cache chain: what is wrong and the fix.
public struct Finding: Sendable, Equatable, Codable {
    public enum Severity: String, Sendable, Codable { case ok, warning, error }
    public var check: String
    public var severity: Severity
    public var detail: String
    /// What to do about it (nil when all is well).
    public var fix: String?

    public init(_ check: String, _ severity: Severity, _ detail: String, fix: String? = nil) {
        self.check = check
        self.severity = severity
        self.detail = detail
        self.fix = fix
    }
}

/// Checks that a directory can hold an FS-Cache cache: a local filesystem
/// with user xattrs (cachefiles keeps object metadata in them) and enough
/// free space for the culling thresholds.
public enum CacheDirectory {
    /// statfs f_type of filesystems that are themselves remote: caching a
    /// network share on another network share gains nothing (and may deadlock).
    static let networkFilesystems: [Int: String] = [
        0x6969: "nfs", 0xFF53_4D42: "cifs", 0xFE53_4D42: "smb2", 0x517B: "smb", 0x00C3_6400: "ceph",
        0x5346_414F: "afs", 0x0102_1997: "9p", 0x6573_5546: "fuse", 0x4750_4653: "gpfs", 0x7461_636F: "ocfs2",
    ]

    /// Space and inode usage of the filesystem holding `dir`.
    public struct Usage: Sendable, Equatable, Codable {
        public var totalBytes: UInt64
        public var availableBytes: UInt64
        public var totalFiles: UInt64
        public var availableFiles: UInt64
        public var freeBytesPercent: Double { totalBytes == 0 ? 0 : Double(availableBytes) * 100 / Double(totalBytes) }
        public var freeFilesPercent: Double {
            totalFiles == 0 ? 100 : Double(availableFiles) * 100 / Double(totalFiles)
        }
    }

    public static func usage(of dir: String) throws(CachectlError) -> Usage {
        let space = try FilesystemSpace.of(dir)
        return Usage(
            totalBytes: space.totalBytes, availableBytes: space.availableBytes,
            totalFiles: space.totalFiles, availableFiles: space.availableFiles)
    }

    /// The filesystem type name when `dir` is on a network filesystem.
    public static func networkFilesystem(at dir: String) throws(CachectlError) -> String? {
        var st = statfs()
        _ = try sys("statfs", dir) { statfs(dir, &st) }
        return networkFilesystems[Int(UInt32(truncatingIfNeeded: st.f_type))]
    }

    /// Whether the filesystem of `dir` has the `user.` xattr namespace, asked
    /// without writing: reading an absent user xattr answers ENODATA where the
    /// namespace exists and EOPNOTSUPP where it does not. Returns the errno when refused.
    public static func probeUserXattr(_ dir: String) -> Int32? {
        if getxattr(dir, "user.cachectl.probe", nil, 0) >= 0 { return nil }
        let code = errno
        return code == ENODATA ? nil : code
    }

    /// mkdir -p with mode 0700 for what it creates. Returns true when it created something.
    @discardableResult
    public static func create(_ dir: String) throws(CachectlError) -> Bool {
        do {
            return try Path.makeDirectory(dir, mode: 0o700)
        } catch  where error.errno == ENOTDIR && error.path == dir {
            throw CachectlError("cache dir", path: dir, errno: ENOTDIR, hint: "choose a directory, or remove that file")
        }
    }

    /// Every check for a cache at `config.dir` (which must exist).
    public static func check(_ config: CachefilesdConfig, sys: String = "/sys") -> [Finding] {
        let dir = config.dir
        var findings: [Finding] = []
        do {
            if let fs = try networkFilesystem(at: dir) {
                findings.append(
                    Finding(
                        "cache filesystem", .error, "\(dir) is on \(fs), a network filesystem",
                        fix:
                            "put the cache on a local disk (ext4 or xfs): cachectl cache setup --dir /var/cache/fscache"
                    ))
            } else {
                findings.append(Finding("cache filesystem", .ok, "\(dir) is on a local filesystem"))
            }
        } catch {
            findings.append(Finding("cache filesystem", .error, error.description, fix: "create \(dir) first"))
            return findings
        }
        if let code = probeUserXattr(dir) {
            findings.append(
                Finding(
                    "user xattrs", .error,
                    "\(dir) refuses user xattrs: \(Errno.message(code)) (\(Errno.name(code)))",
                    fix: code == EOPNOTSUPP || code == ENOTSUP
                        ? "use ext4 or xfs (ext4 needs the user_xattr mount option, on by default), or another --dir"
                        : "run as root"))
        } else {
            findings.append(Finding("user xattrs", .ok, "\(dir) stores user xattrs"))
        }
        if let usage = try? usage(of: dir) {
            findings.append(
                spaceFinding(
                    "free space", usage.freeBytesPercent, run: config.brun, cull: config.bcull, stop: config.bstop,
                    dir: dir, prefix: "b"))
            findings.append(
                spaceFinding(
                    "free files", usage.freeFilesPercent, run: config.frun, cull: config.fcull, stop: config.fstop,
                    dir: dir, prefix: "f"))
        }
        if let enforce = try? AtomicFile.readText(sys + "/fs/selinux/enforce"), enforce.hasPrefix("1") {
            var label = [UInt8](repeating: 0, count: 256)
            let n = getxattr(dir, "security.selinux", &label, label.count)
            let text = n > 0 ? String(decoding: label[0..<n].prefix { $0 != 0 }, as: UTF8.self) : "(none)"
            if text.contains("cachefiles_var_t") {
                findings.append(Finding("selinux label", .ok, "\(dir) is labelled \(text)"))
            } else {
                findings.append(
                    Finding(
                        "selinux label", .error,
                        "SELinux is enforcing and \(dir) is labelled \(text), not cachefiles_var_t",
                        fix: "semanage fcontext -a -t cachefiles_var_t '\(dir)(/.*)?' && restorecon -Rv \(dir)"))
            }
        }
        return findings
    }

    static func spaceFinding(
        _ check: String, _ free: Double, run: Int, cull: Int, stop: Int, dir: String, prefix: String
    ) -> Finding {
        let shown = formatFixed(free, digits: 1) + "%"
        if free < Double(stop) {
            return Finding(
                check, .error,
                "\(shown) \(check) on \(dir) is below \(prefix)stop \(stop)%: the cache will not store anything",
                fix: "free space on that filesystem, or lower \(prefix)stop/\(prefix)cull/\(prefix)run")
        }
        if free < Double(run) {
            return Finding(
                check, .warning,
                "\(shown) \(check) on \(dir) is below \(prefix)run \(run)%: the cache culls instead of growing",
                fix: "free space on that filesystem, or lower \(prefix)run (now \(run)%)")
        }
        return Finding(check, .ok, "\(shown) \(check) on \(dir), above \(prefix)run \(run)%")
    }
}
