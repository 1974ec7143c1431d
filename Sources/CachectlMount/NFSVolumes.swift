import CachectlSystem

/// One NFS superblock from /proc/fs/nfsfs/volumes:
/// `NV SERVER PORT DEV FSID FSC` — `v4 7f000001 801 0:53 a6ba...:b7b1... yes`.
public struct NFSVolume: Sendable, Equatable, Codable {
    public var version: String
    /// The server address as the kernel prints it (hex IPv4/IPv6).
    public var serverHex: String
    public var port: String
    public var device: DeviceNumber
    public var fsid: String
    /// FS-Cache on for this superblock: the proof that `fsc` took effect.
    public var fsc: Bool

    /// The server as dotted IPv4 when it is one (`7f000001` → `127.0.0.1`).
    public var server: String {
        guard serverHex.count == 8, let value = UInt32(serverHex, radix: 16) else { return serverHex }
        return "\(value >> 24).\((value >> 16) & 0xff).\((value >> 8) & 0xff).\(value & 0xff)"
    }

    public static func parse(_ text: String) -> [NFSVolume] {
        let lines = text.split(separator: "\n")
        guard let header = lines.first else { return [] }
        let columns = header.split(separator: " ").map(String.init)
        guard let dev = columns.firstIndex(of: "DEV"), let fsc = columns.firstIndex(of: "FSC") else { return [] }
        return lines.dropFirst().compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == columns.count, let device = DeviceNumber(parsing: fields[dev]) else { return nil }
            func column(_ name: String) -> String { columns.firstIndex(of: name).map { fields[$0] } ?? "" }
            return NFSVolume(
                version: column("NV"), serverHex: column("SERVER"), port: column("PORT"),
                device: device, fsid: column("FSID"), fsc: fields[fsc] == "yes")
        }
    }

    /// Empty when NFS is not loaded (no /proc/fs/nfsfs).
    public static func read(proc: String = "/proc") -> [NFSVolume] {
        guard let text = try? AtomicFile.readText(proc + "/fs/nfsfs/volumes") else { return [] }
        return parse(text)
    }
}
