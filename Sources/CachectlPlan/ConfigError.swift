/// A problem with the YAML file, located: `cachectl.yaml:12:5: tiers[0].size: not a size: 8Q`.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file it came from (as given).
    public var file: String
    /// 1-based line and column of the offending key or value (nil when the file
    /// could not be read or the problem has no single place).
    public var line: Int?
    public var column: Int?
    /// Dotted path of the value: `tiers[0].size`; empty for the document.
    public var path: String
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        text += ": "
        if !path.isEmpty { text += path + ": " }
        return text + message
    }
}

/// Every problem found in one file (decoding reports them all at once, in line order).
public struct ConfigErrors: Error, CustomStringConvertible, Sendable, Equatable {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        self.errors = errors.sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }
    }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
