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
        KernelAttribute.read(path(for: device, sys: sys)).flatMap { UInt64($0) }
    }

    /// Sets it; returns false when it already had that value (nothing written).
    @discardableResult
    public static func set(kilobytes: UInt64, for device: DeviceNumber, sys: String = "/sys") throws(CachectlError)
        -> Bool
    {
        if self.kilobytes(for: device, sys: sys) == kilobytes { return false }
        try KernelAttribute.write("\(kilobytes)\n", to: path(for: device, sys: sys))
        return true
    }
}
