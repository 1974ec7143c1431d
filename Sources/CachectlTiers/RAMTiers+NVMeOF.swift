import CachectlMount
import CachectlSystem
import FoundationEssentials
import Glibc

/// nvmeof tiers: a filesystem on an NVMe-over-Fabrics namespace, so models are
/// placed in another machine's RAM (exported with `cachectl nvmet export`).
/// Connecting is the caller's job (CachectlNVMeOF); a tier only needs the
/// block device, and refuses any that is not a fabrics namespace, so a typo
/// cannot mkfs a local disk.
extension RAMTiers {
    /// Live when the device still exists and is what is mounted at the tier's path.
    func nvmeofMount(_ entry: MountEntry, of record: TierRecord) -> MountEntry? {
        guard let device = record.spec.device, access(device, F_OK) == 0, entry.source == device else { return nil }
        return entry
    }

    func bringUpNVMeOF(_ spec: TierSpec, createdPath: Bool, steps: inout [String]) throws {
        guard let device = spec.device else { throw CachectlError.usage(["device"], "an nvmeof tier needs a device") }
        do {
            try Self.checkFabricsNamespace(device, roots: roots)
            if let user = try MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo").first(where: { $0.source == device }) {
                throw CachectlError(
                    "use \(device) for tier \(spec.name)", path: device, errno: EBUSY,
                    hint: "it is mounted on \(user.target); unmount it or choose another device")
            }
            let filesystem = spec.filesystem ?? .ext4
            try Self.makeFilesystem(filesystem, on: device)
            steps.append("made \(filesystem.rawValue) on \(device)")
            // discard: deleted copies punch holes in the target's backing, giving its RAM back.
            try Mounter.mount(source: device, target: spec.path, fstype: filesystem.rawValue, flags: Self.mountFlags, data: "discard")
            steps.append("mounted \(device) on \(spec.path) with discard")
        } catch {
            if createdPath { rmdir(spec.path) }
            throw error
        }
    }

    /// The device must be an NVMe namespace reached over a fabric (tcp, rdma,
    /// loop, fc), judged by sysfs: the controller(s) behind it name their transport.
    static func checkFabricsNamespace(_ device: String, roots: KernelRoots) throws {
        var st = stat()
        _ = try sys("stat", device) { stat(device, &st) }
        guard st.st_mode & S_IFMT == S_IFBLK else {
            throw CachectlError.failed("use \(device) as an nvmeof tier", path: device, hint: "not a block device")
        }
        let name = Path.lastComponent(of: device)
        let deviceDir = roots.sys + "/class/block/\(name)/device"
        var transports: [String] = []
        if let t = try? AtomicFile.readText(deviceDir + "/transport") {
            transports.append(t)
        } else {
            // A native-multipath head: its device is the subsystem, whose children are controllers.
            for entry in Self.directoryNames(deviceDir) where entry.hasPrefix("nvme") {
                if let t = try? AtomicFile.readText(deviceDir + "/\(entry)/transport") { transports.append(t) }
            }
        }
        let fabrics = transports.map { $0.trimmingWhitespace() }.filter { $0 != "pcie" && !$0.isEmpty }
        guard name.hasPrefix("nvme"), !fabrics.isEmpty else {
            throw CachectlError.failed(
                "use \(device) as an nvmeof tier", path: device,
                hint: "it is not an NVMe-over-Fabrics namespace (connect one with: cachectl nvmet connect ...); "
                    + "cachectl makes a new filesystem on it, so it refuses local disks")
        }
    }

    static func directoryNames(_ path: String) -> [String] {
        (try? ModelCatalog.listDirectory(path).map(\.name)) ?? []
    }

    static func nvmeofResizeRefusal(_ name: String) -> CachectlError {
        CachectlError.failed(
            "resize tier \(name)",
            hint: "an nvmeof tier is as large as its remote namespace; export a new size, then destroy and create the tier")
    }

    /// Tiers whose device is one of `devices` (the namespaces of a controller
    /// about to be disconnected), by name.
    public func tiers(onDevices devices: [String]) throws -> [String] {
        try stateFile.load().tiers.filter { record in
            guard record.spec.type == .nvmeof else { return false }
            if let device = record.spec.device, devices.contains(device) { return true }
            return mount(of: record).map { devices.contains($0.source) } ?? false
        }.map(\.spec.name)
    }
}

extension TierSpec {
    /// An nvmeof tier names its device under /dev; other tiers name none.
    func validateDevice() throws(CachectlError) {
        guard type == .nvmeof else {
            if device != nil { throw CachectlError.usage(["device"], "device applies to nvmeof tiers only") }
            return
        }
        guard let device else {
            throw CachectlError.usage(["device"], "an nvmeof tier needs a device, /dev/nvmeXnY", hint: "name the namespace's block device, or the subsystem NQN to connect to")
        }
        guard device.hasPrefix("/dev/"), !device.contains(","), !device.contains("\n"), !device.contains("..") else {
            throw CachectlError.usage(["device"], "device must be a path under /dev: \(device)")
        }
    }
}
