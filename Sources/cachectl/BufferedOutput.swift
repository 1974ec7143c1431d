import CachectlSystem
import Glibc

/// Standard output through a 64 KiB buffer, for commands that print one line per file
/// (100,000 files make megabytes of output): written with write(2) each time the buffer
/// fills, so memory stays flat however long the output is. A value type on purpose:
/// held in a local variable, its appends need no runtime exclusivity checks. Call
/// `flush()` before writing to stderr (so the two streams stay in order) and at the end.
struct BufferedOutput {
    private var bytes: [UInt8] = []
    private static let capacity = 64 << 10

    init() {
        bytes.reserveCapacity(Self.capacity + 4096)
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
        if bytes.count >= Self.capacity { flush() }
    }

    mutating func append(byte: UInt8) { bytes.append(byte) }

    /// `text` as a JSON string literal (quotes included), escaped as JSONEncoder does:
    /// `"` and `\`, control characters as `\n` `\t` ... or `\u00XX`; slashes and
    /// non-ASCII are written as they are (UTF-8).
    mutating func appendJSONString(_ text: String) {
        var text = text
        bytes.append(UInt8(ascii: "\""))
        text.withUTF8 { utf8 in
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 { appendEscaped(byte) }
        }
        bytes.append(UInt8(ascii: "\""))
        if bytes.count >= Self.capacity { flush() }
    }

    private mutating func appendEscaped(_ byte: UInt8) {
        let backslash = UInt8(ascii: "\\")
        switch byte {
        case UInt8(ascii: "\""), backslash: bytes.append(contentsOf: [backslash, byte])
        case 0x0A: bytes.append(contentsOf: [backslash, UInt8(ascii: "n")])
        case 0x0D: bytes.append(contentsOf: [backslash, UInt8(ascii: "r")])
        case 0x09: bytes.append(contentsOf: [backslash, UInt8(ascii: "t")])
        case 0x08: bytes.append(contentsOf: [backslash, UInt8(ascii: "b")])
        case 0x0C: bytes.append(contentsOf: [backslash, UInt8(ascii: "f")])
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: [
                backslash, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)],
            ])
        default: bytes.append(byte)
        }
    }

    /// A JSON number as JSONEncoder writes it: integers without a fraction (`100`,
    /// not `100.0`), others in Swift's shortest round-trip form.
    mutating func appendJSONNumber(_ value: Double) {
        if value == 100 {
            append("100")
            return
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        append(text)
    }

    mutating func appendJSONNumber(_ value: UInt64) { append(String(value)) }

    /// Writes what is buffered; a closed pipe or a full disk is not cachectl's error.
    mutating func flush() {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { StandardStream.output.write($0) }
        bytes.removeAll(keepingCapacity: true)
    }
}
