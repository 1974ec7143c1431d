import CachectlSystem

extension NetworkMounts {
    /// The NFS/CIFS entries of fstab that nothing is mounted on (options
    /// redacted), as `NetworkMount`s with `mounted: false`: what `status` shows
    /// when a share did not come up at boot.
    public static func unmountedFstabShares(roots: KernelRoots = .system) -> [NetworkMount] {
        guard let fstab = try? MountTable.fstab(roots.etc + "/fstab"),
            let mounted = try? MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")
        else { return [] }
        let mountpoints = Set(mounted.map { normalizedMountPoint($0.target) })
        return fstab.filter { $0.isNetworkShare && !mountpoints.contains(normalizedMountPoint($0.target)) }.map {
            entry in
            let (server, export) = splitSource(entry.source, fstype: entry.fstype)
            let options = OptionString.redacted(entry.options)
            return NetworkMount(
                mountpoint: entry.target, fstype: entry.fstype, source: entry.source, server: server, export: export,
                options: options, device: nil, fscInSuperblock: false, nfsFSC: nil, readaheadKB: nil,
                fstabOptions: options, fstabHasFsc: OptionString.contains(entry.options, "fsc"), mounted: false)
        }
    }
}
