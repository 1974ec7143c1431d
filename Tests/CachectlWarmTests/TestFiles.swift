import CachectlSystem
import CachectlTestSupport
import CachectlWarm
import Foundation
import Glibc

/// A scratch directory under /var/tmp (a disk filesystem, so the page cache is real;
/// /tmp may be tmpfs, whose pages can never be evicted), removed on deinit.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = try makeTemporaryDirectory("warm", in: "/var/tmp")
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Creates a file of `size` pseudo-random bytes, written back to disk and evicted.
    @discardableResult
    func file(_ name: String, size: Int, seed: UInt64 = 1) throws -> String {
        let full = path + "/" + name
        try FileManager.default.createDirectory(atPath: Path.directory(of: full), withIntermediateDirectories: true)
        var generator = SplitMix(seed: seed)
        var bytes = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 8) {
            var value = generator.next()
            withUnsafeBytes(of: &value) { raw in
                for j in 0..<min(8, size - i) { bytes[i + j] = raw[j] }
            }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        try evict(full)
        return full
    }

    /// Writes back and drops one file from the page cache (only this file).
    func evict(_ path: String) throws {
        let file = try OpenFile(path)
        _ = fdatasync(file.fd)
        try file.advise(POSIX_FADV_DONTNEED)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Kernel {
    /// cachestat(2) exists on Linux 6.5+.
    static let hasCachestat: Bool = {
        guard let file = try? OpenFile("/proc/self/exe") else { return false }
        return (try? ResidencyProbe(file: file, size: 1, preferred: .cachestat)) != nil
    }()
}
