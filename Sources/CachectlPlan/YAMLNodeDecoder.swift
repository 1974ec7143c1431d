/// Decodes `Decodable` types from a YAML node tree (``YAMLComposer``), strictly, keeping the
/// position of every node so each problem is reported with its line and column.
///
/// Why not `YAMLDecoder`: it drops the marks and ignores keys nobody asked for.
/// Here every mapping a type opens is recorded with the keys the type asked
/// for; a key that no type asked for is an unknown key. So the check follows
/// the types themselves (`CachefilesdConfig`'s own `Decodable` included) and
/// cannot drift from them.
///
/// YAML keys are snake_case: a coding key `resumeThresholds` matches
/// `resume_thresholds` (an exact match wins, so map keys such as model names
/// pass through as written).
struct YAMLNodeDecoder {
    let file: String

    /// Decodes, then reports the keys every mapping accepts (for the schema test).
    func acceptedKeys<T: Decodable>(_ type: T.Type, from node: YAMLNode) throws -> [String: Set<String>] {
        let context = DecodingState(file: file)
        _ = try T(from: NodeDecoder(node: node, path: [], state: context))
        return context.acceptedKeys()
    }

    func decode<T: Decodable>(_ type: T.Type, from node: YAMLNode) throws(ConfigErrors) -> T {
        let context = DecodingState(file: file)
        let decoder = NodeDecoder(node: node, path: [], state: context)
        var errors: [ConfigError] = []
        var value: T?
        do {
            value = try T(from: decoder)
        } catch {
            errors.append(context.located(error, fallback: node, path: []))
        }
        // A mapping whose decoding a type error interrupted has keys nobody got
        // to ask for: they are not unknown, only unread.
        let interrupted = errors.first?.path
        errors += context.unknownKeys().filter { unknown in
            guard let interrupted else { return true }
            let mapping = unknown.path.split(separator: ".").dropLast().joined(separator: ".")
            return
                !(mapping.isEmpty || interrupted == mapping || interrupted.hasPrefix(mapping + ".")
                || interrupted.hasPrefix(mapping + "["))
        }
        if let value, errors.isEmpty { return value }
        throw ConfigErrors(errors)
    }
}

/// A coding path rendered for people: `tiers[1].size`.
func renderPath(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += (text.isEmpty ? "" : ".") + YAMLKey.snakeCase(key.stringValue)
        }
    }
    return text
}

enum YAMLKey {
    /// `resumeThresholds` → `resume_thresholds`; already snake_case stays.
    static func snakeCase(_ key: String) -> String {
        var out = ""
        for character in key {
            if character.isUppercase {
                if !out.isEmpty { out += "_" }
                out += character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }
}

/// An error with its place attached, thrown from inside the decoder so the
/// innermost node names the position.
struct LocatedError: Error {
    var error: ConfigError
}

/// Shared by every container of one decode: the mappings opened and the keys asked for.
final class DecodingState {
    let file: String
    private var mappings: [String: (mapping: YAMLNode.Mapping, path: [any CodingKey], used: Set<String>, all: Bool)] =
        [:]
    private var order: [String] = []

    init(file: String) { self.file = file }

    func opened(_ mapping: YAMLNode.Mapping, path: [any CodingKey]) {
        let id = renderPath(path)
        if mappings[id] == nil {
            mappings[id] = (mapping, path, [], false)
            order.append(id)
        }
    }

    func asked(_ key: String, at path: [any CodingKey]) {
        mappings[renderPath(path)]?.used.insert(key)
    }

    func askedAll(at path: [any CodingKey]) {
        mappings[renderPath(path)]?.all = true
    }

    /// Keys each mapping's type asked for, by path with list indices as `[]`
    /// (maps decoded whole, such as `pinned`, are left out): what the decoder accepts.
    func acceptedKeys() -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for (id, entry) in mappings where !entry.all {
            let generic = Self.genericIndices(id)
            result[generic, default: []].formUnion(entry.used.filter { $0 == YAMLKey.snakeCase($0) })
        }
        return result
    }

    /// `tiers[1].cache[12]` → `tiers[].cache[]` (only `[digits]` is an index).
    static func genericIndices(_ path: String) -> String {
        var out = ""
        var rest = Substring(path)
        while let open = rest.firstIndex(of: "[") {
            out += rest[..<open]
            let digits = rest[rest.index(after: open)...].prefix { $0.isASCII && $0.isNumber }
            if !digits.isEmpty, digits.endIndex < rest.endIndex, rest[digits.endIndex] == "]" {
                out += "[]"
                rest = rest[rest.index(after: digits.endIndex)...]
            } else {
                out += "["
                rest = rest[rest.index(after: open)...]
            }
        }
        return out + rest
    }

    func unknownKeys() -> [ConfigError] {
        var errors: [ConfigError] = []
        for id in order {
            guard let entry = mappings[id], !entry.all else { continue }
            let known = entry.used.sorted()
            for (key, _) in entry.mapping.pairs {
                let name = key.string ?? "\(key)"
                guard !entry.used.contains(name) else { continue }
                let suggestion =
                    known.min { editDistance($0, name) < editDistance($1, name) }
                    .flatMap { editDistance($0, name) <= 2 ? " (did you mean \($0)?)" : nil } ?? ""
                let place = id.isEmpty ? "top level" : id
                errors.append(
                    ConfigError(
                        file: file, line: key.mark.line, column: key.mark.column,
                        path: id.isEmpty ? name : id + "." + name,
                        message:
                            "unknown key \(InputBounds.show(name))\(suggestion); allowed in \(place): \(known.joined(separator: ", "))"
                    ))
            }
        }
        return errors
    }

    /// Gives any error a position: ours already have one; others (a type's own
    /// `DecodingError`, a validation error) take the node they were thrown for.
    func located(_ error: any Error, fallback node: YAMLNode, path: [any CodingKey]) -> ConfigError {
        if let located = error as? LocatedError { return located.error }
        let message: String
        var where_ = path
        switch error {
        case DecodingError.dataCorrupted(let context), DecodingError.typeMismatch(_, let context),
            DecodingError.valueNotFound(_, let context):
            message = context.debugDescription
            if context.codingPath.count > path.count { where_ = context.codingPath }
        case DecodingError.keyNotFound(let key, _):
            message = "missing required key '\(YAMLKey.snakeCase(key.stringValue))'"
        default:
            message = String(describing: error)
        }
        return ConfigError(
            file: file, line: node.mark.line, column: node.mark.column, path: renderPath(where_), message: message)
    }

    func error(_ message: String, node: YAMLNode, path: [any CodingKey]) -> LocatedError {
        LocatedError(
            error: ConfigError(
                file: file, line: node.mark.line, column: node.mark.column, path: renderPath(path), message: message))
    }
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

/// Human name of what a node is, for "expected X, got Y".
private func describe(_ node: YAMLNode) -> String {
    switch node {
    case .scalar(let scalar):
        if scalar.tag == .null { return "nothing (null)" }
        return InputBounds.show(scalar.value)
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    }
}

struct NodeDecoder: Decoder {
    let node: YAMLNode
    let path: [any CodingKey]
    let state: DecodingState

    var codingPath: [any CodingKey] { path }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else {
            throw state.error("expected a mapping (key: value lines), got \(describe(node))", node: node, path: path)
        }
        state.opened(mapping, path: path)
        return KeyedDecodingContainer(KeyedNodeContainer<Key>(mapping: mapping, node: node, path: path, state: state))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else {
            throw state.error("expected a list, got \(describe(node))", node: node, path: path)
        }
        return UnkeyedNodeContainer(nodes: sequence.items, node: node, path: path, state: state)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleNodeContainer(node: node, path: path, state: state)
    }
}

/// Decodes one node as a value: scalars by their resolved YAML tag, so `brun: ten`
/// is a type error rather than zero, and `nocull: "yes"` (a quoted string) is not a bool.
struct SingleNodeContainer: SingleValueDecodingContainer {
    let node: YAMLNode
    let path: [any CodingKey]
    let state: DecodingState
    var codingPath: [any CodingKey] { path }

    private func scalar(_ what: String) throws -> YAMLNode.Scalar {
        guard case .scalar(let scalar) = node else {
            throw state.error("expected \(what), got \(describe(node))", node: node, path: path)
        }
        return scalar
    }

    func decodeNil() -> Bool {
        if case .scalar(let scalar) = node { return scalar.tag == .null }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        let scalar = try scalar("true or false")
        guard scalar.tag == .bool, let value = scalar.bool else {
            throw state.error("expected true or false, got \(describe(node))", node: node, path: path)
        }
        return value
    }

    func decode(_ type: String.Type) throws -> String {
        let scalar = try scalar("a string")
        guard scalar.tag != .null else {
            throw state.error("expected a string, got nothing (null)", node: node, path: path)
        }
        return scalar.value
    }

    func decode(_ type: Double.Type) throws -> Double {
        let scalar = try scalar("a number")
        guard scalar.tag == .float || scalar.tag == .int, let value = scalar.double else {
            throw state.error("expected a number, got \(describe(node))", node: node, path: path)
        }
        return value
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let scalar = try scalar("an integer")
        guard scalar.tag == .int, let value = scalar.int else {
            throw state.error("expected an integer, got \(describe(node))", node: node, path: path)
        }
        guard let exact = T(exactly: value) else {
            throw state.error("\(value) is out of range (\(T.min)...\(T.max))", node: node, path: path)
        }
        return exact
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeNested(type, node: node, path: path, state: state)
    }
}

/// Decodes a nested value; errors the type throws itself (a `DecodingError`, an
/// enum's unknown raw value) get this node's position.
private func decodeNested<T: Decodable>(_ type: T.Type, node: YAMLNode, path: [any CodingKey], state: DecodingState)
    throws -> T
{
    let decoder = NodeDecoder(node: node, path: path, state: state)
    do {
        return try T(from: decoder)
    } catch let error as LocatedError {
        throw error
    } catch DecodingError.dataCorrupted(let context) where context.codingPath.count <= path.count {
        // RawRepresentable enums say "Cannot initialize X from invalid String value y".
        var message = context.debugDescription
        if let options = (T.self as? any CaseIterable.Type).map({ allCases($0) }), !options.isEmpty,
            message.hasPrefix("Cannot initialize")
        {
            message = "\(describe(node)) is not one of: \(options.joined(separator: ", "))"
        }
        throw state.error(message, node: node, path: path)
    } catch {
        throw LocatedError(error: state.located(error, fallback: node, path: path))
    }
}

private func allCases(_ type: any CaseIterable.Type) -> [String] {
    func open<C: CaseIterable>(_: C.Type) -> [String] {
        C.allCases.map { value in (value as? any RawRepresentable).map { "\($0.rawValue)" } ?? "\(value)" }
    }
    return open(type)
}

struct KeyedNodeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let mapping: YAMLNode.Mapping
    let node: YAMLNode
    let path: [any CodingKey]
    let state: DecodingState
    var codingPath: [any CodingKey] { path }

    var allKeys: [Key] {
        state.askedAll(at: path)
        return mapping.keys.compactMap { $0.string.flatMap { Key(stringValue: $0) } }
    }

    /// The YAML key for a coding key: as written, else snake_case.
    private func lookup(_ key: Key) -> (name: String, value: YAMLNode)? {
        for name in [key.stringValue, YAMLKey.snakeCase(key.stringValue)] {
            if let value = mapping.value(forKey: name) { return (name, value) }
        }
        return nil
    }

    private func record(_ key: Key) {
        state.asked(key.stringValue, at: path)
        state.asked(YAMLKey.snakeCase(key.stringValue), at: path)
    }

    func contains(_ key: Key) -> Bool {
        record(key)
        return lookup(key) != nil
    }

    private func value(for key: Key) throws -> YAMLNode {
        record(key)
        guard let found = lookup(key) else {
            throw state.error("missing required key '\(YAMLKey.snakeCase(key.stringValue))'", node: node, path: path)
        }
        return found.value
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        record(key)
        guard let found = lookup(key) else { return true }
        if case .scalar(let scalar) = found.value { return scalar.tag == .null }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let child = try value(for: key)
        return try decodeNested(type, node: child, path: path + [key], state: state)
    }

    // The primitive overloads all go through the generic path (single-value container).
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decodeValue(type, key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decodeValue(type, key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decodeValue(type, key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decodeValue(type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decodeValue(type, key) }

    private func decodeValue<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T {
        let child = try value(for: key)
        return try decodeNested(type, node: child, path: path + [key], state: state)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try NodeDecoder(node: try value(for: key), path: path + [key], state: state).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try NodeDecoder(node: try value(for: key), path: path + [key], state: state).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { NodeDecoder(node: node, path: path, state: state) }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        NodeDecoder(node: try value(for: key), path: path + [key], state: state)
    }
}

struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
}

struct UnkeyedNodeContainer: UnkeyedDecodingContainer {
    let nodes: [YAMLNode]
    let node: YAMLNode
    let path: [any CodingKey]
    let state: DecodingState
    var currentIndex = 0

    init(nodes: [YAMLNode], node: YAMLNode, path: [any CodingKey], state: DecodingState) {
        self.nodes = nodes
        self.node = node
        self.path = path
        self.state = state
    }

    var codingPath: [any CodingKey] { path }
    var count: Int? { nodes.count }
    var isAtEnd: Bool { currentIndex >= nodes.count }

    private mutating func next() throws -> (YAMLNode, [any CodingKey]) {
        guard !isAtEnd else { throw state.error("the list has too few items", node: node, path: path) }
        defer { currentIndex += 1 }
        return (nodes[currentIndex], path + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { return false }
        if case .scalar(let scalar) = nodes[currentIndex], scalar.tag == .null {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (child, childPath) = try next()
        return try decodeNested(type, node: child, path: childPath, state: state)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<
        NestedKey
    > {
        let (child, childPath) = try next()
        return try NodeDecoder(node: child, path: childPath, state: state).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (child, childPath) = try next()
        return try NodeDecoder(node: child, path: childPath, state: state).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (child, childPath) = try next()
        return NodeDecoder(node: child, path: childPath, state: state)
    }
}
