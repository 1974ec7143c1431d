import CachectlSystem
import Glibc

/// The readahead window of a mount's backing device (bdi), in KiB:
/// /sys/class/bdi/MAJ:MIN/read_ahead_kb. NFS starts at 128 KiB, which caps
/// sequential reads of large model files; the value lasts until the next mount.
public enum Readahead {
    public static func path(for device: DeviceNumber, sys: String = "/sys") -> String {
        "\(sys)/class/bdi/\(device)/read_ahead_kb"
    }

    public static func kilobytes(for device: DeviceNumber, sys: String = "/sys") -> UInt64? {
        guard let text = try? AtomicFile.readText(path(for: device, sys: sys)) else { return nil }
        return UInt64(text.trimmingWhitespace())
    }

    /// Sets it; returns false when it already had that value (nothing written).
    @discardableResult
    public static func set(kilobytes: UInt64, for device: DeviceNumber, sys: String = "/sys") throws(CachectlError) -> Bool {
        if self.kilobytes(for: device, sys: sys) == kilobytes { return false }
        let file = try OpenFile(path(for: device, sys: sys), flags: O_WRONLY)
        let text = Array("\(kilobytes)\n".utf8)
        var failure: CachectlError?
        text.withUnsafeBytes { bytes in
            do { try file.writeAll(bytes) } catch { failure = error as? CachectlError }
        }
        if let failure { throw failure }
        return true
    }
}
