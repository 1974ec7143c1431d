import CachectlMount
import CachectlSystem
import Glibc

/// A zram tier: a compressed RAM block device with a filesystem on it.
struct ZramTier: TierBackend {
    let roots: KernelRoots

    func bringUp(_ spec: TierSpec, previous: TierRecord?, steps: inout [String]) throws -> TierRecord {
        // A device left from before a reboot does not exist; one from a resize is reused.
        let device: ZramDevice
        if let id = previous?.zramDevice, ZramDevice(id: id, roots: roots).exists,
            (try? ZramDevice(id: id, roots: roots).diskSize()) == 0
        {
            device = ZramDevice(id: id, roots: roots)
        } else {
            device = try ZramDevice.hotAdd(roots: roots)
            steps.append("added \(device.devicePath)")
        }
        do {
            if let algorithm = spec.algorithm {
                try device.setAlgorithm(algorithm)  // must precede disksize
                steps.append("algorithm \(algorithm)")
            }
            try device.setDiskSize(spec.size.bytes)
            let filesystem = spec.filesystem ?? .ext4
            try RAMTiers.makeFilesystem(filesystem, on: device.devicePath)
            steps.append("made \(filesystem.rawValue) on \(device.devicePath)")
            try Mounter.mount(
                source: device.devicePath, target: spec.path, fstype: filesystem.rawValue, flags: RAMTiers.mountFlags,
                data: "discard")
            steps.append("mounted \(device.devicePath) on \(spec.path) with discard")
        } catch {
            try? device.reset()
            try? device.hotRemove()
            throw error
        }
        return TierRecord(spec: spec, zramDevice: device.id)
    }

    /// Resets the device (its memory is freed) and removes it.
    func release(_ record: TierRecord, steps: inout [String]) throws {
        guard let id = record.zramDevice else { return }
        let device = ZramDevice(id: id, roots: roots)
        guard device.exists else { return }
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
        steps.append("reset and removed \(device.devicePath)")
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
    func resize(_ record: TierRecord, to spec: TierSpec, steps: inout [String]) throws -> TierRecord {
        try Mounter.unmount(record.spec.path, force: false)
        steps.append("unmounted \((record.spec.filesystem ?? .ext4).rawValue) from \(record.spec.path)")
        try release(record, steps: &steps)
        var resized = try bringUp(spec, previous: record, steps: &steps)
        resized.createdPath = record.createdPath
        return resized
    }

    func currentSize(_ record: TierRecord) -> UInt64? {
        try? ZramDevice(id: record.zramDevice ?? -1, roots: roots).diskSize()
    }
}
