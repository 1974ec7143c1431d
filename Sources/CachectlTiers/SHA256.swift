import CCachectlShims
import CachectlSystem
import Glibc

/// Streaming SHA-256 through OpenSSL's libcrypto (EVP API), for checking ollama
/// blobs, whose file names are their digests. libcrypto is loaded when the first
/// digest is made, not when cachectl starts (README, "Many files and start-up").
public final class SHA256Digest {
    private let context: OpaquePointer

    public init() throws(CachectlError) {
        if let reason = cachectl_sha256_unavailable() {
            throw CachectlError.failed(
                "load OpenSSL's libcrypto.so.3 for SHA-256",
                hint: "\(String(cString: reason)); install it (Debian, Ubuntu: libssl3) to verify ollama blobs")
        }
        guard let context = cachectl_sha256_new() else {
            throw CachectlError("start a SHA-256 digest", errno: ENOMEM)
        }
        self.context = context
    }

    deinit { cachectl_sha256_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) throws(CachectlError) {
        guard bytes.count > 0 else { return }
        guard cachectl_sha256_update(context, bytes.baseAddress, bytes.count) == 0 else {
            throw CachectlError.failed("SHA-256: libcrypto refused the data")
        }
    }

    /// The digest as 64 lowercase hex digits. Call once.
    public func finish() throws(CachectlError) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        guard cachectl_sha256_final(context, &digest) == 0 else {
            throw CachectlError.failed("SHA-256: libcrypto could not finish the digest")
        }
        return Self.hex(digest)
    }

    /// SHA-256 of a whole file, read with pread in 4 MiB chunks.
    public static func ofFile(_ path: String) throws(CachectlError) -> String {
        let hasher = try SHA256Digest()
        let file = try OpenFile(path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: Int64 = 0
        while true {
            let n = try file.read(into: buffer, at: offset)
            if n == 0 { break }
            try hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += Int64(n)
        }
        return try hasher.finish()
    }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
