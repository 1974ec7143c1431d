import CCachectlYAML

/// Turns YAML text into one ``YAMLNode`` tree with libyaml's event parser
/// (`yaml_parser_parse`), the C library Debian ships as libyaml-0-2.
///
/// What it refuses beyond libyaml's own syntax errors, each with its line and column:
/// - a second document (`---` after the first): a configuration is one document;
/// - an alias naming no anchor before it, or the node that contains it (a cycle);
/// - aliases that expand to more than ``maxAliasExpansion`` nodes in all
///   (a "billion laughs" document would otherwise make a tree of millions of nodes);
/// - nesting deeper than ``maxDepth`` (the composer recurses);
/// - the same key twice in one mapping.
enum YAMLComposer {
    /// Nodes that aliases may add to the document in all: ample for sharing a
    /// few lists, far below what exponential alias nesting reaches.
    static let maxAliasExpansion = 100_000
    /// Mappings and lists inside each other at most.
    static let maxDepth = 200

    /// The document's root node; nil for a text with no document (empty, or comments only).
    static func compose(_ text: String) throws(YAMLError) -> YAMLNode? {
        // libyaml reads from a buffer that must outlive the parser; a trailing NUL
        // keeps the pointer valid for an empty text (not passed as input).
        var bytes = Array(text.utf8)
        bytes.append(0)
        let result: Result<YAMLNode?, YAMLError> = bytes.withUnsafeBufferPointer { buffer in
            let events = EventReader(buffer.baseAddress!, count: buffer.count - 1)
            var composer = Composer(events: events)
            return Result { () throws(YAMLError) in try composer.document() }
        }
        return try result.get()
    }
}

/// One libyaml event, copied out of the C structure (which is freed at once).
private struct Event {
    enum Kind {
        case streamStart, streamEnd, documentStart, documentEnd
        case alias(anchor: String)
        case scalar(value: String, anchor: String?, tag: String?, style: YAMLNode.Scalar.Style, quotedImplicit: Bool)
        case sequenceStart(anchor: String?)
        case sequenceEnd
        case mappingStart(anchor: String?)
        case mappingEnd
    }

    var kind: Kind
    var mark: YAMLMark
}

/// Owns the `yaml_parser_t`; each `next()` is one `yaml_parser_parse`.
private final class EventReader {
    private var parser = yaml_parser_t()
    private let input: UnsafePointer<UInt8>
    private let count: Int

    init(_ input: UnsafePointer<UInt8>, count: Int) {
        self.input = input
        self.count = count
        // Fails only when malloc does; the first parse then reports a memory error.
        _ = cachectl_yaml_parser_initialize(&parser)
        cachectl_yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        cachectl_yaml_parser_set_input_string(&parser, input, count)
    }

    deinit { cachectl_yaml_parser_delete(&parser) }

    func next() throws(YAMLError) -> Event {
        var event = yaml_event_t()
        guard cachectl_yaml_parser_parse(&parser, &event) == 1 else { throw error() }
        defer { cachectl_yaml_event_delete(&event) }
        let mark = YAMLMark(line: event.start_mark.line + 1, column: event.start_mark.column + 1)
        let kind: Event.Kind
        switch event.type {
        case YAML_STREAM_START_EVENT: kind = .streamStart
        case YAML_STREAM_END_EVENT: kind = .streamEnd
        case YAML_DOCUMENT_START_EVENT: kind = .documentStart
        case YAML_DOCUMENT_END_EVENT: kind = .documentEnd
        case YAML_ALIAS_EVENT: kind = .alias(anchor: string(event.data.alias.anchor) ?? "")
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            // A scalar may contain NUL characters ("\0" in double quotes): use its length.
            let value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let style: YAMLNode.Scalar.Style =
                switch scalar.style {
                case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
                case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
                case YAML_LITERAL_SCALAR_STYLE: .literal
                case YAML_FOLDED_SCALAR_STYLE: .folded
                default: .plain
                }
            kind = .scalar(
                value: value, anchor: string(scalar.anchor), tag: string(scalar.tag), style: style,
                quotedImplicit: scalar.quoted_implicit != 0)
        case YAML_SEQUENCE_START_EVENT: kind = .sequenceStart(anchor: string(event.data.sequence_start.anchor))
        case YAML_SEQUENCE_END_EVENT: kind = .sequenceEnd
        case YAML_MAPPING_START_EVENT: kind = .mappingStart(anchor: string(event.data.mapping_start.anchor))
        case YAML_MAPPING_END_EVENT: kind = .mappingEnd
        default: kind = .streamEnd  // YAML_NO_EVENT: libyaml emits it only after the stream's end.
        }
        return Event(kind: kind, mark: mark)
    }

    private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    /// libyaml's problem, context and position, worded as Yams did (`YAML syntax: <problem> <context>`).
    private func error() -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(message: "YAML: out of memory")
        case YAML_READER_ERROR:
            // No mark for a reader error, only a byte offset: count lines and characters to it.
            let offset = min(parser.problem_offset, count)
            var mark = YAMLMark(line: 1, column: 1)
            for byte in UnsafeBufferPointer(start: input, count: offset) {
                if byte == UInt8(ascii: "\n") {
                    mark = YAMLMark(line: mark.line + 1, column: 1)
                } else if byte & 0xC0 != 0x80 {
                    mark.column += 1
                }
            }
            let value =
                parser.problem_value == -1 ? "" : " (#x\(String(parser.problem_value, radix: 16, uppercase: true)))"
            return YAMLError(message: "YAML syntax: \(problem)\(value)", mark: mark)
        default:
            let context = parser.context.map { " " + String(cString: $0) } ?? ""
            return YAMLError(
                message: "YAML syntax: \(problem)\(context)",
                mark: YAMLMark(line: parser.problem_mark.line + 1, column: parser.problem_mark.column + 1))
        }
    }
}

/// Builds the tree from the events of one document, resolving aliases.
private struct Composer {
    let events: EventReader
    /// Completed anchored nodes; a later anchor of the same name replaces an earlier one.
    private var anchors: [String: YAMLNode] = [:]
    /// Anchors of the mappings and lists being composed now: an alias to one is a cycle.
    private var open: [String] = []
    private var expanded = 0

    init(events: EventReader) { self.events = events }

    mutating func document() throws(YAMLError) -> YAMLNode? {
        _ = try events.next()  // stream start
        let start = try events.next()
        if case .streamEnd = start.kind { return nil }
        let root = try node(try events.next(), depth: 0)
        _ = try events.next()  // document end
        let after = try events.next()
        if case .streamEnd = after.kind { return root }
        throw YAMLError(
            message: "YAML: a second document (after ---) was found; a configuration is one document", mark: after.mark)
    }

    private mutating func node(_ event: Event, depth: Int) throws(YAMLError) -> YAMLNode {
        switch event.kind {
        case .alias(let name):
            if open.contains(name) {
                throw YAMLError(
                    message: "YAML: the alias *\(name) is inside the node &\(name) it names (a cycle)", mark: event.mark
                )
            }
            guard let target = anchors[name] else {
                throw YAMLError(message: "YAML syntax: found undefined alias *\(name)", mark: event.mark)
            }
            expanded += target.nodeCount
            guard expanded <= YAMLComposer.maxAliasExpansion else {
                throw YAMLError(
                    message:
                        "YAML: aliases expand to more than \(YAMLComposer.maxAliasExpansion) nodes; write the values out or share less",
                    mark: event.mark)
            }
            return target

        case .scalar(let value, let anchor, let tag, let style, let quotedImplicit):
            // A quoted or block scalar without a tag is a string (libyaml's quoted_implicit);
            // `!` alone is kept as written, as Yams did.
            let node = YAMLNode.scalar(
                .init(value: value, style: style, explicitTag: quotedImplicit ? nil : tag, mark: event.mark))
            if let anchor { anchors[anchor] = node }
            return node

        case .sequenceStart(let anchor):
            try checkDepth(depth, event.mark)
            if let anchor { open.append(anchor) }
            var items: [YAMLNode] = []
            var count = 1
            while true {
                let next = try events.next()
                if case .sequenceEnd = next.kind { break }
                let item = try node(next, depth: depth + 1)
                count += item.nodeCount
                items.append(item)
            }
            let node = YAMLNode.sequence(.init(items: items, mark: event.mark, nodeCount: count))
            if let anchor {
                open.removeLast()
                anchors[anchor] = node
            }
            return node

        case .mappingStart(let anchor):
            try checkDepth(depth, event.mark)
            if let anchor { open.append(anchor) }
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            var count = 1
            var seen: [String: YAMLMark] = [:]
            while true {
                let next = try events.next()
                if case .mappingEnd = next.kind { break }
                let key = try node(next, depth: depth + 1)
                if case .scalar(let scalar) = key {
                    // Yams compared keys by text and resolved tag: `1` and `"1"` differ.
                    let identity = "\(scalar.tag)\u{0}\(scalar.value)"
                    if let first = seen[identity] {
                        throw YAMLError(
                            message:
                                "YAML: the key \(InputBounds.show(scalar.value)) is given twice in one mapping (first on line \(first.line))",
                            mark: scalar.mark)
                    }
                    seen[identity] = scalar.mark
                }
                let value = try node(try events.next(), depth: depth + 1)
                count += key.nodeCount + value.nodeCount
                pairs.append((key, value))
            }
            let node = YAMLNode.mapping(.init(pairs: pairs, mark: event.mark, nodeCount: count))
            if let anchor {
                open.removeLast()
                anchors[anchor] = node
            }
            return node

        case .streamStart, .streamEnd, .documentStart, .documentEnd, .sequenceEnd, .mappingEnd:
            // libyaml's parser never sends these where a node belongs.
            throw YAMLError(message: "YAML: unexpected event where a value belongs", mark: event.mark)
        }
    }

    private func checkDepth(_ depth: Int, _ mark: YAMLMark) throws(YAMLError) {
        guard depth < YAMLComposer.maxDepth else {
            throw YAMLError(
                message: "YAML: mappings and lists nest deeper than \(YAMLComposer.maxDepth) levels", mark: mark)
        }
    }
}
