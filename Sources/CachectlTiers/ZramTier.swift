import CachectlMount
import CachectlSystem
import Glibc

/// A zram tier: a compressed RAM block device with a filesystem on it.
struct ZramTier: TierBackend {
    let roots: KernelRoots

    func bringUp(_ spec: TierSpec, previous: TierRecord?, log: ChangeLog) throws -> TierRecord {
        // A device left from before a reboot does not exist; one from a resize is reused.
        var device: ZramDevice
        if let id = previous?.zramDevice, ZramDevice(id: id, roots: roots).exists,
            (try? ZramDevice(id: id, roots: roots).diskSize()) == 0
        {
            device = ZramDevice(id: id, roots: roots)
        } else {
            device = ZramDevice(id: -1, roots: roots)
            try log.perform("add a zram device", revert: { [roots] in try? Self.free(device.id, roots: roots) }) {
                device = try ZramDevice.hotAdd(roots: roots)
            }
        }
        // In a check no device was added: the steps name the one that would be.
        let path = log.check && device.id < 0 ? "the new zram device" : device.devicePath
        if let algorithm = spec.algorithm {
            // Must precede disksize. Reset gives a reused device back empty.
            try log.perform("set \(path) algorithm \(algorithm)", revert: { try? device.reset() }) {
                try device.setAlgorithm(algorithm)
            }
        }
        try log.perform("size \(path) to \(spec.size)", revert: { try? device.reset() }) {
            try device.setDiskSize(spec.size.bytes)
        }
        // The device's reset, earlier in the log, undoes the mkfs.
        try RAMTiers.formatAndMount(path, spec, log: log, resetUndoesMkfs: true)
        return TierRecord(spec: spec, zramDevice: device.id < 0 ? nil : device.id)
    }

    /// Resets the device (its memory is freed) and removes it.
    func release(_ record: TierRecord, log: ChangeLog) throws {
        guard let id = record.zramDevice, ZramDevice(id: id, roots: roots).exists else { return }
        try log.perform("reset and remove /dev/zram\(id)") { try Self.free(id, roots: roots) }
    }

    static func free(_ id: Int, roots: KernelRoots) throws {
        let device = ZramDevice(id: id, roots: roots)
        do {
            try device.reset()
        } catch {
            throw CachectlError(
                "reset", path: device.blockDirectory, errno: error.errno,
                hint:
                    "\(device.devicePath) is still in use (a lazily detached mount keeps it until its last file is closed); try again later"
            )
        }
        try device.hotRemove()
    }

    func liveMount(_ entry: MountEntry, of record: TierRecord) -> MountEntry? {
        guard let id = record.zramDevice, ZramDevice(id: id, roots: roots).exists, entry.source.hasSuffix("/zram\(id)")
        else { return nil }
        return entry
    }

    /// A zram tier is rebuilt to resize, so it must be empty.
    func checkResize(_ record: TierRecord, to size: ByteSize, models: [String]) throws {
        if !models.isEmpty || !RAMTiers.isEmptyDirectory(record.spec.path) {
            throw CachectlError.failed(
                "resize zram tier \(record.spec.name)", path: record.spec.path,
                hint: "a zram tier is rebuilt to resize, so it must be empty"
                    + (models.isEmpty
                        ? "; remove the files in it" : "; demote first: \(models.joined(separator: ", "))"))
        }
    }

    /// Unmounts, resets the device and brings the tier up again at the new size.
    func resize(_ record: TierRecord, to spec: TierSpec, log: ChangeLog) throws -> TierRecord {
        try log.perform("unmount \((record.spec.filesystem ?? .ext4).rawValue) from \(record.spec.path)") {
            try Mounter.unmount(record.spec.path, force: false)
        }
        try release(record, log: log)
        var resized = try bringUp(spec, previous: record, log: log)
        resized.createdPath = record.createdPath
        return resized
    }

    func currentSize(_ record: TierRecord) -> UInt64? {
        try? ZramDevice(id: record.zramDevice ?? -1, roots: roots).diskSize()
    }
}
