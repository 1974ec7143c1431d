import CachectlSystem

/// A device number as the kernel prints it in mountinfo, nfsfs/volumes and
/// /sys/class/bdi: `major:minor`. NFS and CIFS superblocks have anonymous
/// devices (major 0), which is how a mount and its NFS volume are joined.
public struct DeviceNumber: Sendable, Hashable, Codable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// Splits a Linux `dev_t` (glibc's encoding; `major()`/`minor()` are macros Swift cannot call).
    public init(_ dev: UInt64) {
        major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)))
        minor = UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)))
    }

    /// Parses `0:53`.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major):\(minor)" }

    /// The block device's queue attribute NAME (/sys/dev/block/MAJ:MIN/queue/NAME, or
    /// its disk's for a partition), trimmed; nil when neither can be read.
    public func queueAttribute(_ name: String, sys: String = "/sys") -> String? {
        let base = "\(sys)/dev/block/\(self)"
        return KernelAttribute.read(base + "/queue/" + name) ?? KernelAttribute.read(base + "/../queue/" + name)
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = DeviceNumber(parsing: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not MAJOR:MINOR: \(text)"))
        }
        self = parsed
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One line of a mount table: /proc/self/mountinfo (a live mount) or fstab (a wish).
public struct MountEntry: Sendable, Equatable, Codable {
    /// What is mounted: `server:/export`, `//server/share`, `/dev/sda1`, `tmpfs`.
    public var source: String
    /// Where: the mount point.
    public var target: String
    public var fstype: String
    /// All options as fstab writes them (for a live mount: VFS and superblock options merged).
    public var options: String
    /// Per-mount options (`rw,nosuid,relatime`); live mounts only.
    public var vfsOptions: String?
    /// Superblock options (`vers=4.2,rsize=...,fsc`); live mounts only. Where NFS
    /// and CIFS show `fsc` when FS-Cache is on for the superblock.
    public var superOptions: String?
    /// The superblock's device; live mounts only.
    public var device: DeviceNumber?
    /// mountinfo's mount ID and parent ID; live mounts only.
    public var id: Int?
    public var parentID: Int?
    /// fstab's fifth and sixth fields.
    public var freq: Int?
    public var passno: Int?

    public init(
        source: String, target: String, fstype: String, options: String,
        vfsOptions: String? = nil, superOptions: String? = nil, device: DeviceNumber? = nil,
        id: Int? = nil, parentID: Int? = nil, freq: Int? = nil, passno: Int? = nil
    ) {
        self.source = source
        self.target = target
        self.fstype = fstype
        self.options = options
        self.vfsOptions = vfsOptions
        self.superOptions = superOptions
        self.device = device
        self.id = id
        self.parentID = parentID
        self.freq = freq
        self.passno = passno
    }

    /// NFS (any version) or CIFS/SMB: the filesystems FS-Cache can back.
    public var isNetworkShare: Bool { NetworkFilesystem(fstype: fstype) != nil }
}

/// The network filesystems cachectl puts behind FS-Cache.
public enum NetworkFilesystem: String, Sendable, Codable {
    case nfs
    case cifs

    public init?(fstype: String) {
        switch fstype {
        case "nfs", "nfs4": self = .nfs
        case "cifs", "smb3": self = .cifs
        default: return nil
        }
    }
}

/// Mount points compare without trailing slashes (`/mnt/models/` is `/mnt/models`).
func normalizedMountPoint(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    return String(p)
}
