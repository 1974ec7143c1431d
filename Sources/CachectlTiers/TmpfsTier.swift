import CachectlMount
import CachectlSystem
import Glibc

/// A tmpfs tier: page-cache memory, swappable, no compression.
struct TmpfsTier: TierBackend {
    func bringUp(_ spec: TierSpec, previous: TierRecord?, log: ChangeLog) throws -> TierRecord {
        try log.perform(
            "mount tmpfs (\(spec.size)) on \(spec.path)", revert: { try? Mounter.unmount(spec.path, force: false) }
        ) {
            try Mounter.mount(
                source: Self.source(spec.name), target: spec.path, fstype: "tmpfs", flags: RAMTiers.mountFlags,
                data: "size=\(spec.size.bytes),mode=0755")
        }
        return TierRecord(spec: spec)
    }

    func release(_ record: TierRecord, log: ChangeLog) throws {}

    func liveMount(_ entry: MountEntry, of record: TierRecord) -> MountEntry? {
        entry.fstype == "tmpfs" ? entry : nil
    }

    /// Never below what is stored.
    func checkResize(_ record: TierRecord, to size: ByteSize, models: [String]) throws {
        if let usage = try? SpaceUsage.of(record.spec.path), usage.used > size.bytes {
            throw CachectlError.failed(
                "resize tier \(record.spec.name) to \(size)", path: record.spec.path,
                hint: "\(ByteSize.format(usage.used)) is stored there; demote models first")
        }
    }

    /// In place: a remount with the new size.
    func resize(_ record: TierRecord, to spec: TierSpec, log: ChangeLog) throws -> TierRecord {
        let remount = { (size: ByteSize) throws in
            try Mounter.remount(
                target: spec.path, fstype: "tmpfs", flags: RAMTiers.mountFlags, data: "size=\(size.bytes)")
        }
        try log.perform(
            "remount tmpfs on \(spec.path) with size \(spec.size)", revert: { try? remount(record.spec.size) }
        ) { try remount(spec.size) }
        var resized = record
        resized.spec = spec
        return resized
    }

    /// A tmpfs with the source name cachectl gives its own (`cachectl-NAME`),
    /// which only root in this mount namespace can have set.
    func adopts(_ entry: MountEntry, as spec: TierSpec) -> Bool {
        entry.fstype == "tmpfs" && entry.source == Self.source(spec.name)
    }

    static func source(_ name: String) -> String { "cachectl-" + name }
}
