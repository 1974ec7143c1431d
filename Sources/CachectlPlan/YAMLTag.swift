/// A scalar's resolved YAML tag, and the YAML 1.1 rules that resolve a plain
/// scalar's: the same rules, in the same order, as Yams' default resolver that
/// cachectl used before (its regular expressions are written out here as plain
/// matching over the ASCII bytes, so no Foundation is needed).
enum YAMLTag: Equatable, Sendable {
    case null, bool, int, float, str, merge, timestamp, value
    /// An explicit tag with no meaning here (`!foo`, `!!binary`, `!`): decodes as a string.
    case other(String)

    private static let prefix = "tag:yaml.org,2002:"

    init(explicit tag: String) {
        switch tag {
        case Self.prefix + "null": self = .null
        case Self.prefix + "bool": self = .bool
        case Self.prefix + "int": self = .int
        case Self.prefix + "float": self = .float
        case Self.prefix + "str": self = .str
        case Self.prefix + "merge": self = .merge
        case Self.prefix + "timestamp": self = .timestamp
        case Self.prefix + "value": self = .value
        default: self = .other(tag)
        }
    }

    /// The tag of a plain (unquoted, untagged) scalar: the first rule that matches
    /// the whole text, in Yams' order bool, int, float, merge, null, timestamp, value; else `str`.
    static func resolve(plain text: String) -> YAMLTag {
        if boolWords.contains(text) { return .bool }
        let bytes = Array(text.utf8)
        if isInt(bytes) { return .int }
        if isFloat(bytes) { return .float }
        if text == "<<" { return .merge }
        if nullWords.contains(text) { return .null }
        if isTimestamp(bytes) { return .timestamp }
        if text == "=" { return .value }
        return .str
    }

    private static let boolWords: Set<String> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE",
        "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ]
    private static let nullWords: Set<String> = ["~", "null", "Null", "NULL", ""]

    /// `[-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
    static func isInt(_ bytes: [UInt8]) -> Bool {
        var body = ArraySlice(bytes)
        if let first = body.first, first == .plus || first == .minus { body = body.dropFirst() }
        guard let first = body.first else { return false }
        if body.starts(with: [.zero, .b]) {
            return body.count > 2 && body.dropFirst(2).allSatisfy { $0 == .zero || $0 == .one || $0 == .underscore }
        }
        if body.starts(with: [.zero, .x]) {
            return body.count > 2 && body.dropFirst(2).allSatisfy { $0.isHexDigit || $0 == .underscore }
        }
        if first == .zero {
            // `0`, or octal: `0o17`, `017` (the `o` is optional).
            var rest = body.dropFirst()
            if rest.isEmpty { return true }
            if rest.first == .o { rest = rest.dropFirst() }
            return !rest.isEmpty && rest.allSatisfy { ($0 >= .zero && $0 <= .seven) || $0 == .underscore }
        }
        guard first >= .one && first <= .nine else { return false }
        // Decimal, or base 60 (`1:30`): the part before the first colon is `[1-9][0-9_]*`.
        let parts = body.split(separator: .colon, omittingEmptySubsequences: false)
        guard parts[0].allSatisfy({ $0.isDigit || $0 == .underscore }) else { return false }
        return parts.dropFirst().allSatisfy(isSexagesimalDigitPair)
    }

    /// `[-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)? | \.[0-9_]+([eE][-+][0-9]+)?
    /// | [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`
    static func isFloat(_ bytes: [UInt8]) -> Bool {
        let text = ArraySlice(bytes)
        if [".nan", ".NaN", ".NAN"].contains(where: { text.elementsEqual($0.utf8) }) { return true }
        var body = text
        let signed = body.first == .plus || body.first == .minus
        if signed { body = body.dropFirst() }
        if [".inf", ".Inf", ".INF"].contains(where: { body.elementsEqual($0.utf8) }) { return true }
        guard let first = body.first else { return false }
        if first == .dot {
            // `.5`, `.5e+3`: no sign before, and the exponent's sign is required.
            guard !signed else { return false }
            var rest = body.dropFirst()
            let mantissa = rest.prefix { $0.isDigit || $0 == .underscore }
            guard !mantissa.isEmpty else { return false }
            rest = rest.dropFirst(mantissa.count)
            if rest.isEmpty { return true }
            guard rest.first == .e || rest.first == .E else { return false }
            rest = rest.dropFirst()
            guard rest.first == .plus || rest.first == .minus else { return false }
            rest = rest.dropFirst()
            return !rest.isEmpty && rest.allSatisfy(\.isDigit)
        }
        guard first.isDigit else { return false }
        var rest = body.dropFirst()
        rest = rest.dropFirst(rest.prefix { $0.isDigit || $0 == .underscore }.count)
        if rest.first == .colon {
            // Base 60 with a fraction: `190:20:30.15`.
            guard let dot = rest.firstIndex(of: .dot) else { return false }
            let pairs = rest[rest.startIndex..<dot].dropFirst().split(
                separator: .colon, omittingEmptySubsequences: false)
            return pairs.allSatisfy(isSexagesimalDigitPair)
                && rest[(dot + 1)...].allSatisfy { $0.isDigit || $0 == .underscore }
        }
        if rest.first == .dot {
            rest = rest.dropFirst()
            rest = rest.dropFirst(rest.prefix { $0.isDigit || $0 == .underscore }.count)
        }
        if rest.isEmpty { return true }
        guard rest.first == .e || rest.first == .E else { return false }
        rest = rest.dropFirst()
        if rest.first == .plus || rest.first == .minus { rest = rest.dropFirst() }
        return !rest.isEmpty && rest.allSatisfy(\.isDigit)
    }

    /// `[0-5]?[0-9]`: one base-60 digit after a colon.
    private static func isSexagesimalDigitPair(_ part: ArraySlice<UInt8>) -> Bool {
        switch part.count {
        case 1: part.first!.isDigit
        case 2: part.first! >= .zero && part.first! <= .five && part.last!.isDigit
        default: false
        }
    }

    /// `YYYY-MM-DD`, or `YYYY-M-D` then `T`/`t`/blanks, `h:mm:ss`, an optional
    /// fraction and an optional zone (`Z`, `+1`, `-05:00`, after optional blanks).
    static func isTimestamp(_ bytes: [UInt8]) -> Bool {
        var rest = ArraySlice(bytes)
        func digits(_ range: ClosedRange<Int>) -> Bool {
            let run = rest.prefix { $0.isDigit }.count
            guard range.contains(run) else { return false }
            rest = rest.dropFirst(run)
            return true
        }
        func take(_ byte: UInt8) -> Bool {
            guard rest.first == byte else { return false }
            rest = rest.dropFirst()
            return true
        }
        guard digits(4...4), take(.minus) else { return false }
        let dateStart = rest
        if digits(2...2), take(.minus), digits(2...2), rest.isEmpty { return true }
        rest = dateStart
        guard digits(1...2), take(.minus), digits(1...2) else { return false }
        if !(take(.T) || take(.t)) {
            let blanks = rest.prefix { $0 == .space || $0 == .tab }.count
            guard blanks > 0 else { return false }
            rest = rest.dropFirst(blanks)
        }
        guard digits(1...2), take(.colon), digits(2...2), take(.colon), digits(2...2) else { return false }
        if take(.dot) { rest = rest.dropFirst(rest.prefix { $0.isDigit }.count) }
        if rest.isEmpty { return true }
        rest = rest.dropFirst(rest.prefix { $0 == .space || $0 == .tab }.count)
        if take(.Z) { return rest.isEmpty }
        guard take(.plus) || take(.minus), digits(1...2) else { return false }
        if rest.isEmpty { return true }
        return take(.colon) && digits(2...2) && rest.isEmpty
    }
}

extension YAMLNode.Scalar {
    /// The value as a bool, the way Yams constructed one (any case of
    /// true/yes/on, false/no/off); nil for a `str` tag or other text.
    var bool: Bool? {
        guard tag != .str else { return nil }
        switch value.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }

    /// The value as an integer, the way Yams constructed one: plain scalars only,
    /// `_` ignored, `0x`/`0b`/`0o`/`0` prefixes, base 60 (`1:30` is 90); nil on overflow.
    var int: Int? {
        guard style == .plain else { return nil }
        let withSign = value.filter { $0 != "_" }
        if withSign == "0" { return 0 }
        let negative = withSign.hasPrefix("-")
        let hasSign = negative || withSign.hasPrefix("+")
        let digits = withSign.dropFirst(hasSign ? 1 : 0)
        for (prefix, radix) in [("0x", 16), ("0b", 2), ("0o", 8), ("0", 8)] where digits.hasPrefix(prefix) {
            return Int((negative ? "-" : "") + digits.dropFirst(prefix.count), radix: radix)
        }
        if digits.contains(Character(":")) {
            return Self.sexagesimal(
                digits, negative: negative, parse: { Int($0, radix: 10) },
                multiply: { $0.multipliedReportingOverflow(by: $1) }, add: { $0.addingReportingOverflow($1) })
        }
        return Int(withSign)
    }

    /// The value as a number, the way Yams constructed one: plain scalars only,
    /// `.inf`/`-.inf`/`.nan` in any case, `_` ignored, base 60.
    var double: Double? {
        guard style == .plain else { return nil }
        switch value.lowercased() {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default:
            let plain = value.filter { $0 != "_" }
            guard plain.contains(Character(":")) else { return Double(plain) }
            let negative = plain.hasPrefix("-")
            let digits = plain.dropFirst(negative || plain.hasPrefix("+") ? 1 : 0)
            return Self.sexagesimal(
                digits, negative: negative, parse: { Double($0) }, multiply: { ($0 * $1, false) },
                add: { ($0 + $1, false) })
        }
    }

    /// `a:b:c` as a·60² + b·60 + c (each part parsed by `parse`), negated if asked.
    private static func sexagesimal<T: SignedNumeric>(
        _ text: Substring, negative: Bool, parse: (Substring) -> T?,
        multiply: (T, T) -> (partialValue: T, overflow: Bool), add: (T, T) -> (partialValue: T, overflow: Bool)
    ) -> T? {
        var value: T = 0
        for part in text.split(separator: ":", omittingEmptySubsequences: false) {
            guard let digit = parse(part) else { return nil }
            let shifted = multiply(value, 60)
            let sum = add(shifted.partialValue, digit)
            guard !shifted.overflow, !sum.overflow else { return nil }
            value = sum.partialValue
        }
        return negative ? -value : value
    }
}

extension UInt8 {
    fileprivate static let plus = UInt8(ascii: "+"), minus = UInt8(ascii: "-"), dot = UInt8(ascii: "."),
        colon = UInt8(ascii: ":")
    fileprivate static let underscore = UInt8(ascii: "_"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
    fileprivate static let zero = UInt8(ascii: "0"), one = UInt8(ascii: "1"), five = UInt8(ascii: "5"),
        seven = UInt8(ascii: "7"), nine = UInt8(ascii: "9")
    fileprivate static let b = UInt8(ascii: "b"), o = UInt8(ascii: "o"), x = UInt8(ascii: "x"), e = UInt8(ascii: "e"),
        E = UInt8(ascii: "E")
    fileprivate static let t = UInt8(ascii: "t"), T = UInt8(ascii: "T"), Z = UInt8(ascii: "Z")

    fileprivate var isDigit: Bool { self >= .zero && self <= .nine }
    fileprivate var isHexDigit: Bool {
        isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
