import CachectlSystem
import FoundationEssentials
import Glibc

/// One zram device, driven through sysfs (Documentation/admin-guide/blockdev/zram.rst):
/// `hot_add` hands out a free device number, the algorithm must be set before
/// `disksize`, `reset` frees its memory, `hot_remove` deletes the device.
public struct ZramDevice: Sendable, Equatable {
    public let id: Int
    public let roots: KernelRoots

    public init(id: Int, roots: KernelRoots = .system) {
        self.id = id
        self.roots = roots
    }

    public var blockDirectory: String { "\(roots.sys)/block/zram\(id)" }
    public var devicePath: String { "\(roots.dev)/zram\(id)" }
    static func controlDirectory(_ roots: KernelRoots) -> String { roots.sys + "/class/zram-control" }

    public var exists: Bool { access(blockDirectory, F_OK) == 0 }

    /// Creates a new device: reading `hot_add` returns its number.
    public static func hotAdd(roots: KernelRoots = .system) throws(CachectlError) -> ZramDevice {
        let control = controlDirectory(roots) + "/hot_add"
        guard access(control, F_OK) == 0 else {
            throw CachectlError(
                "open", path: control, errno: ENOENT, hint: "this kernel has no zram; try: modprobe zram")
        }
        let text = try AtomicFile.readText(control)
        guard let id = Int(text.trimmingWhitespace()) else {
            throw CachectlError.failed("read \(control)", hint: "unexpected answer '\(text)'")
        }
        return ZramDevice(id: id, roots: roots)
    }

    /// Algorithms this kernel offers; the current one is shown in brackets.
    public func algorithms() throws(CachectlError) -> (available: [String], current: String?) {
        Self.parseAlgorithms(try AtomicFile.readText(blockDirectory + "/comp_algorithm"))
    }

    public static func parseAlgorithms(_ text: String) -> (available: [String], current: String?) {
        var current: String?
        var names: [String] = []
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            if word.hasPrefix("[") && word.hasSuffix("]") {
                let name = String(word.dropFirst().dropLast())
                current = name
                names.append(name)
            } else {
                names.append(String(word))
            }
        }
        return (names, current)
    }

    public func setAlgorithm(_ name: String) throws(CachectlError) {
        let offered = try algorithms().available
        guard offered.contains(name) else {
            throw CachectlError.failed(
                "zram algorithm \(name)", path: blockDirectory + "/comp_algorithm",
                hint: "this kernel offers: \(offered.joined(separator: " "))")
        }
        try writeAttribute("comp_algorithm", name)
    }

    public func setDiskSize(_ bytes: UInt64) throws(CachectlError) {
        try writeAttribute("disksize", String(bytes))
    }

    public func diskSize() throws(CachectlError) -> UInt64 {
        UInt64(try AtomicFile.readText(blockDirectory + "/disksize").trimmingWhitespace()) ?? 0
    }

    /// Frees the device's memory and its size; it fails with EBUSY while it is open or mounted.
    public func reset() throws(CachectlError) {
        try writeAttribute("reset", "1")
    }

    public func hotRemove() throws(CachectlError) {
        let control = Self.controlDirectory(roots) + "/hot_remove"
        try KernelAttribute.write(String(id), to: control)
    }

    public func memoryStats() throws(CachectlError) -> ZramMemoryStats {
        let path = blockDirectory + "/mm_stat"
        let text = try AtomicFile.readText(path)
        guard let stats = ZramMemoryStats(mmStat: text) else {
            throw CachectlError.failed("parse", path: path, hint: "unexpected mm_stat format: \(text)")
        }
        return stats
    }

    private func writeAttribute(_ name: String, _ value: String) throws(CachectlError) {
        try KernelAttribute.write(value, to: blockDirectory + "/" + name)
    }
}

/// `/sys/block/zramN/mm_stat`: how much data is stored and what it costs.
public struct ZramMemoryStats: Encodable, Sendable, Equatable {
    /// Uncompressed bytes stored.
    public var origDataSize: UInt64
    /// Compressed bytes stored.
    public var comprDataSize: UInt64
    /// RAM the device uses, allocator overhead included.
    public var memUsedTotal: UInt64
    public var memLimit: UInt64
    public var memUsedMax: UInt64
    public var samePages: UInt64
    public var pagesCompacted: UInt64
    public var hugePages: UInt64

    /// orig_data_size / compr_data_size; nil while nothing compressed is stored.
    public var compressionRatio: Double? {
        comprDataSize == 0 ? nil : Double(origDataSize) / Double(comprDataSize)
    }

    /// Parses the space-separated counters, in the kernel's order.
    public init?(mmStat text: String) {
        let numbers = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).compactMap { UInt64($0) }
        guard numbers.count >= 7 else { return nil }
        origDataSize = numbers[0]
        comprDataSize = numbers[1]
        memUsedTotal = numbers[2]
        memLimit = numbers[3]
        memUsedMax = numbers[4]
        samePages = numbers[5]
        pagesCompacted = numbers[6]
        hugePages = numbers.count > 7 ? numbers[7] : 0
    }

    private enum CodingKeys: String, CodingKey {
        case origDataSize, comprDataSize, memUsedTotal, memLimit, memUsedMax, samePages, pagesCompacted, hugePages
        case compressionRatio
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(origDataSize, forKey: .origDataSize)
        try c.encode(comprDataSize, forKey: .comprDataSize)
        try c.encode(memUsedTotal, forKey: .memUsedTotal)
        try c.encode(memLimit, forKey: .memLimit)
        try c.encode(memUsedMax, forKey: .memUsedMax)
        try c.encode(samePages, forKey: .samePages)
        try c.encode(pagesCompacted, forKey: .pagesCompacted)
        try c.encode(hugePages, forKey: .hugePages)
        try c.encodeIfPresent(compressionRatio, forKey: .compressionRatio)
    }
}
