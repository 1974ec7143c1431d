/// The llama.cpp split naming: `NAME-00001-of-00004.gguf`. Given any one shard,
/// the whole set can be named.
public struct ShardName: Sendable, Equatable {
    /// Everything before `-NNNNN-of-NNNNN.gguf`.
    public var stem: String
    public var index: Int
    public var count: Int

    /// Parses a file name (not a path). Returns nil for names outside the pattern.
    public init?(fileName: String) {
        let suffix = ".gguf"
        guard fileName.hasSuffix(suffix) else { return nil }
        let base = fileName.dropLast(suffix.count)
        // "-00001-of-00004" is 15 characters: dash, 5 digits, "-of-", 5 digits.
        let parts = base.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[parts.count - 2] == "of" else { return nil }
        let indexText = parts[parts.count - 3]
        let countText = parts[parts.count - 1]
        guard indexText.count == 5, countText.count == 5,
            indexText.allSatisfy(\.isASCII), countText.allSatisfy(\.isASCII),
            let index = Int(indexText), let count = Int(countText),
            index >= 1, count >= 1, index <= count
        else { return nil }
        self.stem = parts[..<(parts.count - 3)].joined(separator: "-")
        guard !stem.isEmpty else { return nil }
        self.index = index
        self.count = count
    }

    /// File names of every shard in the set, in order.
    public var allFileNames: [String] {
        (1...count).map { Self.fileName(stem: stem, index: $0, count: count) }
    }

    public static func fileName(stem: String, index: Int, count: Int) -> String {
        "\(stem)-\(pad(index))-of-\(pad(count)).gguf"
    }

    private static func pad(_ n: Int) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
}
