import Glibc

/// sysfs and configfs attributes. A value is written in one write(2), as their
/// store() methods expect, and the kernel's refusal (EINVAL, EBUSY, EACCES)
/// comes back as the errno of that write.
public enum KernelAttribute {
    public static func write(_ value: String, to path: String, hint: String? = nil) throws(CachectlError) {
        let file = try OpenFile(path, flags: O_WRONLY)
        let bytes = Array(value.utf8)
        _ = try sys("write '\(value.trimmingWhitespace())' to", path, hint: hint) {
            bytes.withUnsafeBytes { Glibc.write(file.fd, $0.baseAddress, $0.count) }
        }
    }

    /// The attribute's value without surrounding whitespace; nil when it cannot be read.
    public static func read(_ path: String) -> String? {
        (try? AtomicFile.readText(path))?.trimmingWhitespace()
    }
}
