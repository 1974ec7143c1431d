import CCachectlShims
import CachectlSystem
import Glibc

/// Files mapped and locked in RAM with mlock(2), as `vmtouch -l` does. The pages
/// stay resident until this value is released (or the process exits).
public final class MemoryLock {
    private var mappings: [(address: UnsafeMutableRawPointer, length: Int)] = []
    public private(set) var lockedBytes: UInt64 = 0

    /// Maps and locks every file; on failure unlocks what it locked and throws.
    public init(files: [SelectedFile]) throws(CachectlError) {
        do throws(CachectlError) {
            for file in files where file.size > 0 {
                let handle = try RegularFile.open(file.path)
                let length = Int(try handle.status().st_size)
                guard length > 0 else { continue }
                let address = mmap(nil, length, PROT_READ, MAP_SHARED, handle.fd, 0)
                if address == MAP_FAILED {
                    throw CachectlError("mmap", path: file.path, errno: errno)
                }
                guard let address else { continue }
                if mlock(address, length) != 0 {
                    let code = errno
                    munmap(address, length)
                    throw CachectlError(
                        "mlock", path: file.path, errno: code, hint: Self.limitHint(adding: UInt64(length)))
                }
                mappings.append((address, length))
                lockedBytes += UInt64(length)
            }
        } catch {
            release()
            throw error
        }
    }

    deinit { release() }

    private func release() {
        for mapping in mappings {
            munlock(mapping.address, mapping.length)
            munmap(mapping.address, mapping.length)
        }
        mappings = []
        lockedBytes = 0
    }

    /// Names RLIMIT_MEMLOCK and how to raise it.
    static func limitHint(adding bytes: UInt64) -> String {
        let limit = cachectl_memlock_limit()
        let current = limit == UInt64.max ? "unlimited" : ByteSize.format(limit)
        return "RLIMIT_MEMLOCK is \(current) and locking needs \(ByteSize.format(bytes)) more; "
            + "raise it (ulimit -l unlimited, or LimitMEMLOCK=infinity in a systemd unit) or run as root"
    }
}
