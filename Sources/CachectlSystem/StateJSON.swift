import FoundationEssentials

/// The one JSON style of cachectl's state files (tiers.json, warm.json, the FUSE
/// mirror's stats): snake_case keys, sorted, indented, a newline at the end.
public enum StateJSON {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return Array(try encoder.encode(value)) + [0x0a]
    }

    /// Reads snake_case keys, and the camelCase keys warm.json had before it took
    /// this style (a key without `_` is left as it is). Dictionary keys (names) are
    /// never converted.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: Data(bytes))
    }
}
