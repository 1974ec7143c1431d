/// cachectl's one template renderer: the mustache subset its templates use
/// (the config files and units, and `cachectl serve`'s page), strict and
/// Foundation-free.
///
/// - `{{name}}` a value; `{{{name}}}` or `{{&name}}` a value never escaped;
///   `{{.}}` the current item of a loop;
/// - `{{#name}}...{{/name}}` kept when the value is true, present text or an
///   object (pushed as the context), repeated for each item of a list;
///   `{{^name}}...{{/name}}` kept when the value is false, null or an empty list;
/// - `{{! comment}}`; a section or comment tag alone on its line takes the line
///   with it (mustache's standalone rule);
/// - dotted names (`cache.reads`) and lookup up the stack of contexts;
/// - a name that no context holds is an error (`unknownKey`), so a typo fails
///   loudly; a value meant to be absent is given as `.null`.
///
/// With `escaping: .html` every `{{name}}` is HTML-escaped as mustache does
/// (`& < > " '`). With `.none` (the config files and units) values go in as
/// they are: callers validate them (no newline, no control character), so a
/// value cannot add a line; there a text section is also false when the text is
/// empty or "false". Partials, lambdas and delimiter changes are not supported.
public struct Template: Sendable {
    public enum Escaping: Sendable { case none, html }

    /// A value in the context a template renders.
    public indirect enum Value: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
        ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
    {
        case text(String)
        case bool(Bool)
        case list([Value])
        case object([String: Value])
        /// Present but empty: renders nothing, a false section.
        case null

        public init(stringLiteral value: String) { self = .text(value) }
        public init(booleanLiteral value: Bool) { self = .bool(value) }
        public init(arrayLiteral elements: Value...) { self = .list(elements) }
        public init(dictionaryLiteral elements: (String, Value)...) {
            self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
        }
        /// Text, or `.null` for nil.
        public static func optional(_ text: String?) -> Value { text.map(Value.text) ?? .null }
        /// A number as Swift prints it (`String(describing:)`).
        public static func number(_ value: some Numeric & CustomStringConvertible) -> Value { .text(value.description) }
    }

    public enum RenderError: Error, CustomStringConvertible, Equatable {
        case unknownKey(String)
        case unbalanced(String)
        case unsupported(String)
        case notText(String)
        public var description: String {
            switch self {
            case .unknownKey(let key): "template uses {{\(key)}} but no value was given"
            case .unbalanced(let key): "template section {{#\(key)}} is not closed (or closed twice)"
            case .unsupported(let tag): "template tag {{\(tag)}} is not supported (or not closed)"
            case .notText(let key): "template inserts {{\(key)}}, which is a list or an object"
            }
        }
    }

    public let text: String
    public let escaping: Escaping
    private let parsed: Result<[Node], RenderError>

    public init(_ text: String, escaping: Escaping = .none) {
        self.text = text
        self.escaping = escaping
        self.parsed = Result(catching: { () throws(RenderError) -> [Node] in try Self.parse(text) })
    }

    /// Throws the first syntax error, if any (the same one `render` would).
    public func check() throws(RenderError) { _ = try parsed.get() }

    /// Flat values, for the config files and units.
    /// - Parameter values: nil means absent (a false section); every key the
    ///   template names, rendered or not, must be in the dictionary.
    public func render(_ values: [String: String?]) throws(RenderError) -> String {
        let nodes = try parsed.get()
        try Self.checkNames(nodes, in: values)
        return try render(.object(values.mapValues(Value.optional)))
    }

    /// Renders with `context` as the outermost context (usually an `.object`).
    public func render(_ context: Value) throws(RenderError) -> String {
        var output = ""
        var stack = [context]
        try render(try parsed.get(), stack: &stack, into: &output)
        return output
    }

    // MARK: parsing

    private indirect enum Node: Sendable {
        case text(String)
        case variable(String, escaped: Bool)
        case section(String, inverted: Bool, [Node])
    }

    private enum Tag {
        case variable(String, escaped: Bool)
        case open(String, inverted: Bool)
        case close(String)
        case comment

        var canStandAlone: Bool {
            if case .variable = self { false } else { true }
        }
    }

    private static func parse(_ text: String) throws(RenderError) -> [Node] {
        // Sections being read: (name, inverted, children); the bottom one is the template.
        var open: [(String, Bool, [Node])] = [("", false, [])]
        var rest = Substring(text)
        func emit(_ node: Node) { open[open.count - 1].2.append(node) }
        func emitText(_ text: Substring) { if !text.isEmpty { emit(.text(String(text))) } }

        while let start = rest.firstRange(of: "{{") {
            let triple = rest[start.upperBound...].hasPrefix("{")
            let innerStart = triple ? rest.index(after: start.upperBound) : start.upperBound
            guard let end = rest[innerStart...].firstRange(of: triple ? "}}}" : "}}") else {
                throw .unsupported(String(rest[start.lowerBound...].prefix(20)))
            }
            let inner = rest[innerStart..<end.lowerBound].trimmingWhitespace()
            let tag: Tag
            if triple {
                tag = .variable(inner, escaped: false)
            } else {
                let body = String(inner.dropFirst()).trimmingWhitespace()
                switch inner.first {
                case "#": tag = .open(body, inverted: false)
                case "^": tag = .open(body, inverted: true)
                case "/": tag = .close(body)
                case "!": tag = .comment
                case "&": tag = .variable(body, escaped: false)
                case ">", "=", "<", "$", "{", nil: throw .unsupported(inner)
                default: tag = .variable(inner, escaped: true)
                }
            }
            // The standalone rule: only spaces around the tag on its line.
            var before = rest[..<start.lowerBound]
            var after = rest[end.upperBound...]
            if tag.canStandAlone {
                let lineStart = before.lastIndex(of: "\n").map { before.index(after: $0) } ?? before.startIndex
                let atLineStart = lineStart > before.startIndex || Self.followsNewline(text, before.startIndex)
                let leading = before[lineStart...]
                let lineEnd = after.firstIndex(of: "\n") ?? after.endIndex
                let trailing = after[..<lineEnd]
                if atLineStart, leading.allSatisfy(Self.isBlank), trailing.allSatisfy(Self.isBlank) {
                    before = before[..<lineStart]
                    after = lineEnd < after.endIndex ? after[after.index(after: lineEnd)...] : after[lineEnd...]
                }
            }
            emitText(before)
            rest = after
            switch tag {
            case .variable(let name, let escaped):
                guard !name.isEmpty else { throw .unsupported(inner) }
                emit(.variable(name, escaped: escaped))
            case .open(let name, let inverted):
                open.append((name, inverted, []))
            case .close(let name):
                guard open.count > 1, let section = open.last, section.0 == name else { throw .unbalanced(name) }
                open.removeLast()
                emit(.section(name, inverted: section.1, section.2))
            case .comment:
                break
            }
        }
        emitText(rest)
        if open.count > 1, let section = open.last { throw .unbalanced(section.0) }
        return open[0].2
    }

    private static func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" }

    /// Whether `index` in `text` is at the start of a line.
    private static func followsNewline(_ text: String, _ index: String.Index) -> Bool {
        index == text.startIndex || text[text.index(before: index)] == "\n"
    }

    /// Every name the template uses, rendered or not, is one of `values`' keys.
    private static func checkNames(_ nodes: [Node], in values: [String: String?]) throws(RenderError) {
        for node in nodes {
            switch node {
            case .text: continue
            case .variable(let name, _):
                if name != ".", values.index(forKey: name) == nil { throw .unknownKey(name) }
            case .section(let name, _, let children):
                if values.index(forKey: name) == nil { throw .unknownKey(name) }
                try checkNames(children, in: values)
            }
        }
    }

    // MARK: rendering

    private func render(_ nodes: [Node], stack: inout [Value], into output: inout String) throws(RenderError) {
        for node in nodes {
            switch node {
            case .text(let text):
                output += text
            case .variable(let name, let escaped):
                switch try lookup(name, in: stack) {
                case .text(let text): output += escaped && escaping == .html ? Self.htmlEscaped(text) : text
                case .bool(let value): output += value ? "true" : "false"
                case .null: break
                case .list, .object: throw .notText(name)
                }
            case .section(let name, let inverted, let children):
                let value = try lookup(name, in: stack)
                if inverted {
                    if !isTrue(value) { try render(children, stack: &stack, into: &output) }
                    continue
                }
                switch value {
                case .list(let items):
                    for item in items {
                        stack.append(item)
                        defer { stack.removeLast() }
                        try render(children, stack: &stack, into: &output)
                    }
                case .bool(true):
                    try render(children, stack: &stack, into: &output)
                case .text, .object:
                    guard isTrue(value) else { continue }
                    stack.append(value)
                    defer { stack.removeLast() }
                    try render(children, stack: &stack, into: &output)
                case .bool(false), .null:
                    continue
                }
            }
        }
    }

    private func isTrue(_ value: Value) -> Bool {
        switch value {
        case .bool(let value): value
        case .null: false
        case .list(let items): !items.isEmpty
        case .object: true
        case .text(let text): escaping == .html || (text != "" && text != "false")
        }
    }

    /// `name` from the innermost context that holds its first part, then down
    /// its dotted parts.
    private func lookup(_ name: String, in stack: [Value]) throws(RenderError) -> Value {
        if name == "." { return stack.last ?? .null }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.contains(where: \.isEmpty) else { throw .unknownKey(name) }
        guard var value = stack.reversed().lazy.compactMap({ Self.child(parts[0], of: $0) }).first else {
            throw .unknownKey(name)
        }
        for part in parts.dropFirst() {
            guard let child = Self.child(part, of: value) else { throw .unknownKey(name) }
            value = child
        }
        return value
    }

    private static func child(_ name: String, of value: Value) -> Value? {
        if case .object(let fields) = value { fields[name] } else { nil }
    }

    /// Text as HTML, escaped as mustache does.
    public static func htmlEscaped(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(c)
            }
        }
        return escaped
    }
}
