import FoundationEssentials
import Glibc

/// A JSON value, printed exactly as Python's `json.dumps(value, sort_keys=True,
/// indent=2)` prints it (what nvmetcli's `save` writes), so a file cachectl saves
/// is byte-for-byte the file nvmetcli would have saved from the same configfs.
public indirect enum NvmetJSON: Equatable, Sendable {
    case object([String: NvmetJSON])
    case array([NvmetJSON])
    case string(String)
    case int(Int)
    case bool(Bool)
    case null

    /// Parses a JSON document (nvmetcli's or cachectl's).
    public static func parse(_ bytes: [UInt8]) throws -> NvmetJSON {
        try JSONDecoder().decode(NvmetJSON.self, from: Data(bytes))
    }

    /// The document as nvmetcli writes it, with the trailing newline.
    public var pythonText: String {
        var out = ""
        Self.write(self, level: 0, into: &out)
        return out + "\n"
    }

    private static func write(_ value: NvmetJSON, level: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: level + 1)
        switch value {
        case .object(let members):
            guard !members.isEmpty else {
                out += "{}"
                return
            }
            out += "{\n"
            // sort_keys=True orders by code point, as Swift's String comparison does for ASCII keys.
            for (index, key) in members.keys.sorted(by: codePointLess).enumerated() {
                out += pad + quoted(key) + ": "
                write(members[key]!, level: level + 1, into: &out)
                if index < members.count - 1 { out += "," }
                out += "\n"
            }
            out += String(repeating: "  ", count: level) + "}"
        case .array(let items):
            guard !items.isEmpty else {
                out += "[]"
                return
            }
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += pad
                write(item, level: level + 1, into: &out)
                if index < items.count - 1 { out += "," }
                out += "\n"
            }
            out += String(repeating: "  ", count: level) + "]"
        case .string(let text): out += quoted(text)
        case .int(let number): out += String(number)
        case .bool(let flag): out += flag ? "true" : "false"
        case .null: out += "null"
        }
    }

    private static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    /// Python's ensure_ascii quoting: \" \\ \n \r \t \b \f, other control and
    /// non-ASCII characters as \uXXXX (UTF-16 units).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for unit in text.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5c: out += "\\\\"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0c: out += "\\f"
            case 0x20..<0x7f: out.unicodeScalars.append(Unicode.Scalar(unit)!)
            default:
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out + "\""
    }

    subscript(key: String) -> NvmetJSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }
}

extension NvmetJSON: Decodable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Int.self) {
            self = .int(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let items = try? container.decode([NvmetJSON].self) {
            self = .array(items)
        } else if let members = try? container.decode([String: NvmetJSON].self) {
            self = .object(members)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a JSON value nvmetcli writes (fractional number?)")
        }
    }
}
