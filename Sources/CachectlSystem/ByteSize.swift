/// Sizes as people type them: `4G`, `512MiB`, `1.5T`, `64k`, `4096`.
/// K, M, G, T (with or without `iB`) are powers of 1024, as tmpfs, zram and
/// dd read them; `KB`, `MB`, `GB`, `TB` are powers of 1000.
public struct ByteSize: Sendable, Equatable, Comparable, Hashable, Codable, CustomStringConvertible {
    public var bytes: UInt64

    public init(_ bytes: UInt64) { self.bytes = bytes }

    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { return nil }
        let numberEnd = trimmed.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? trimmed.endIndex
        let numberText = trimmed[..<numberEnd]
        let unit = trimmed[numberEnd...].lowercased().trimmingWhitespace()
        guard !numberText.isEmpty, numberText.filter({ $0 == "." }).count <= 1 else { return nil }
        let multiplier: Double
        switch unit {
        case "", "b": multiplier = 1
        case "k", "ki", "kib": multiplier = 1024
        case "m", "mi", "mib": multiplier = 1024 * 1024
        case "g", "gi", "gib": multiplier = 1024 * 1024 * 1024
        case "t", "ti", "tib": multiplier = 1024 * 1024 * 1024 * 1024
        case "kb": multiplier = 1e3
        case "mb": multiplier = 1e6
        case "gb": multiplier = 1e9
        case "tb": multiplier = 1e12
        default: return nil
        }
        guard let value = Double(numberText), value.isFinite, value >= 0 else { return nil }
        let total = (value * multiplier).rounded()
        guard total < 1.8e19 else { return nil }
        if multiplier == 1 && numberText.contains(".") { return nil }
        self.bytes = UInt64(total)
    }

    public static func < (a: ByteSize, b: ByteSize) -> Bool { a.bytes < b.bytes }

    /// `1.5 GiB`, `512 MiB`, `4.0 KiB`, `17 B`.
    public var description: String { Self.format(bytes) }

    public static func format(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var index = 0
        while value >= 1024 && index < units.count - 1 {
            value /= 1024
            index += 1
        }
        if index == 0 { return "\(bytes) B" }
        return formatFixed(value, digits: value < 10 ? 2 : (value < 100 ? 1 : 0)) + " " + units[index]
    }

    /// A rate such as `1.21 GiB/s`.
    public static func formatRate(bytes: UInt64, seconds: Double) -> String {
        guard seconds > 0 else { return "-" }
        return format(UInt64(Double(bytes) / seconds)) + "/s"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(UInt64.self) {
            bytes = number
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = ByteSize(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a size: \(text) (examples: 4G, 512MiB, 1.5T)")
        }
        bytes = parsed.bytes
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(bytes)
    }
}

/// Fixed-point formatting without Foundation's locale-dependent formatters.
public func formatFixed(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = UInt64(scaled / scale)
    let fraction = UInt64(scaled - Double(whole) * scale)
    var text = (value < 0 ? "-" : "") + String(whole)
    if digits > 0 {
        var fractionText = String(fraction)
        while fractionText.count < digits { fractionText = "0" + fractionText }
        text += "." + fractionText
    }
    return text
}

extension StringProtocol {
    /// Without leading and trailing whitespace, newlines included (Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)`, without Foundation).
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s = s.dropFirst() }
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
