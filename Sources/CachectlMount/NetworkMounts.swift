import CachectlSystem

/// An NFS or CIFS mount with what decides whether FS-Cache backs it.
public struct NetworkMount: Sendable, Equatable, Codable {
    public var mountpoint: String
    public var fstype: String
    public var source: String
    public var server: String
    public var export: String
    /// VFS and superblock options (secrets redacted).
    public var options: String
    public var device: DeviceNumber?
    /// `fsc` among the superblock options.
    public var fscInSuperblock: Bool
    /// NFS only: the FSC column of /proc/fs/nfsfs/volumes for this device.
    public var nfsFSC: Bool?
    /// The bdi's readahead window in KiB.
    public var readaheadKB: UInt64?
    /// The fstab entry for this mount point (options redacted), if any.
    public var fstabOptions: String?
    public var fstabHasFsc: Bool?
    /// False for an fstab entry of a network share that nothing is mounted on
    /// (a dead server at boot, a failed mount): listed so that status shows it.
    public var mounted: Bool = true

    /// FS-Cache is on: for NFS the volumes table says so, else the superblock option.
    public var fscEnabled: Bool { nfsFSC ?? fscInSuperblock }

    public var kind: NetworkFilesystem? { NetworkFilesystem(fstype: fstype) }
}

public enum NetworkMounts {
    /// Every NFS/CIFS mount of this namespace, joined with nfsfs/volumes (on the
    /// device number), the bdi readahead, and fstab (on the mount point).
    public static func list(roots: KernelRoots = .system) throws(CachectlError) -> [NetworkMount] {
        let mounted = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")
        let fstab = (try? MountTable.fstab(roots.etc + "/fstab")) ?? []
        let volumes = NFSVolume.read(proc: roots.proc)
        return mounted.filter(\.isNetworkShare).map { entry in
            describe(entry, fstab: fstab, volumes: volumes, sys: roots.sys)
        }
    }

    static func describe(_ entry: MountEntry, fstab: [MountEntry], volumes: [NFSVolume], sys: String) -> NetworkMount {
        let (server, export) = splitSource(entry.source, fstype: entry.fstype)
        let superOptions = entry.superOptions ?? ""
        let fstabEntry = fstab.first { normalizedMountPoint($0.target) == normalizedMountPoint(entry.target) }
        let isNFS = NetworkFilesystem(fstype: entry.fstype) == .nfs
        let volume = entry.device.flatMap { device in volumes.first { $0.device == device } }
        return NetworkMount(
            mountpoint: entry.target, fstype: entry.fstype, source: entry.source,
            server: server, export: export, options: OptionString.redacted(entry.options),
            device: entry.device,
            fscInSuperblock: OptionString.contains(superOptions, "fsc"),
            nfsFSC: isNFS ? volume?.fsc : nil,
            readaheadKB: entry.device.flatMap { Readahead.kilobytes(for: $0, sys: sys) },
            fstabOptions: fstabEntry.map { OptionString.redacted($0.options) },
            fstabHasFsc: fstabEntry.map { OptionString.contains($0.options, "fsc") })
    }

    /// `server:/export` (NFS, `[v6]:/export` too) or `//server/share` (CIFS).
    public static func splitSource(_ source: String, fstype: String) -> (server: String, export: String) {
        if source.hasPrefix("//") {
            let rest = source.dropFirst(2)
            guard let slash = rest.firstIndex(of: "/") else { return (String(rest), "") }
            return (String(rest[..<slash]), String(rest[slash...]))
        }
        if source.hasPrefix("["), let close = source.firstIndex(of: "]") {
            let server = String(source[source.index(after: source.startIndex)..<close])
            let rest = source[source.index(after: close)...]
            return (server, String(rest.hasPrefix(":") ? rest.dropFirst() : rest))
        }
        guard let colon = source.firstIndex(of: ":") else { return (source, "") }
        return (String(source[..<colon]), String(source[source.index(after: colon)...]))
    }
}
