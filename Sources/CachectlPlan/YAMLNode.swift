/// A YAML document as cachectl reads it: the node tree libyaml's parser
/// describes (``YAMLComposer``), with aliases already replaced by the node they
/// name and every node's position kept for error messages.
enum YAMLNode {
    case scalar(Scalar)
    case mapping(Mapping)
    case sequence(Sequence)

    /// A scalar as written: its text, how it was quoted, and its explicit tag if any.
    struct Scalar {
        enum Style: Equatable {
            case plain, singleQuoted, doubleQuoted, literal, folded
        }

        /// The text, quotes and escapes already processed by libyaml.
        var value: String
        var style: Style
        /// The tag written on the node, expanded (`!!int` is `tag:yaml.org,2002:int`); nil when none.
        var explicitTag: String?
        var mark: YAMLMark

        /// The resolved tag: the explicit one; `str` for a quoted or block scalar
        /// without one; for a plain scalar the YAML 1.1 rules (``YAMLTag/resolve(plain:)``).
        var tag: YAMLTag {
            if let explicitTag { return YAMLTag(explicit: explicitTag) }
            return style == .plain ? YAMLTag.resolve(plain: value) : .str
        }
    }

    /// A mapping's pairs in the order written (duplicated keys were refused when composing).
    struct Mapping {
        var pairs: [(key: YAMLNode, value: YAMLNode)]
        var mark: YAMLMark
        /// Nodes in this subtree, itself included (aliases counted as what they expand to).
        var nodeCount: Int

        var keys: [YAMLNode] { pairs.map(\.key) }

        /// The value of the first key whose scalar text is `name`.
        func value(forKey name: String) -> YAMLNode? {
            pairs.first { $0.key.string == name }?.value
        }
    }

    struct Sequence {
        var items: [YAMLNode]
        var mark: YAMLMark
        var nodeCount: Int
    }

    /// Where the node starts (for a mapping or a list: its first key or item, as libyaml marks it).
    var mark: YAMLMark {
        switch self {
        case .scalar(let scalar): scalar.mark
        case .mapping(let mapping): mapping.mark
        case .sequence(let sequence): sequence.mark
        }
    }

    /// The text of a scalar; nil for a mapping or list.
    var string: String? {
        if case .scalar(let scalar) = self { return scalar.value }
        return nil
    }

    var nodeCount: Int {
        switch self {
        case .scalar: 1
        case .mapping(let mapping): mapping.nodeCount
        case .sequence(let sequence): sequence.nodeCount
        }
    }
}

/// A position in the YAML text, 1-based; columns count Unicode scalars, as libyaml does.
struct YAMLMark: Equatable, Sendable, CustomStringConvertible {
    var line: Int
    var column: Int
    var description: String { "\(line):\(column)" }
}

/// A syntax or structure problem of the YAML text itself, before any decoding.
struct YAMLError: Error, Equatable, CustomStringConvertible {
    /// `YAML syntax: ...` for what libyaml refused, `YAML: ...` for what the composer refuses.
    var message: String
    var mark: YAMLMark?
    var description: String { (mark.map { "\($0): " } ?? "") + message }
}
