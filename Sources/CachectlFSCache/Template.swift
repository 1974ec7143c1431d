import Foundation
import CachectlSystem

/// Renders the mustache subset cachectl's templates use: `{{name}}`,
/// `{{#name}}...{{/name}}` (kept when the value is present and not "false"),
/// `{{^name}}...{{/name}}` (kept when it is absent) and `{{! comment}}`. A tag
/// alone on its line takes the line with it, as in mustache. Values are
/// inserted as they are: callers validate them (no newline, no control
/// character), so a value cannot add a line to the output.
public struct Template: Sendable {
    public let text: String

    public init(_ text: String) { self.text = text }

    public enum RenderError: Error, CustomStringConvertible, Equatable {
        case unknownKey(String)
        case unbalanced(String)
        public var description: String {
            switch self {
            case .unknownKey(let key): "template uses {{\(key)}} but no value was given"
            case .unbalanced(let key): "template section {{#\(key)}} is not closed (or closed twice)"
            }
        }
    }

    /// - Parameter values: nil means absent (a false section); every key the
    ///   template names must be in the dictionary, so a typo fails loudly.
    public func render(_ values: [String: String?]) throws(RenderError) -> String {
        var output = ""
        // Sections open: (name, renders?) — a line renders only when all enclosing sections do.
        var stack: [(String, Bool)] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            let isLast = index == lines.count - 1
            if let tag = Self.standaloneTag(line) {
                try apply(tag, values: values, stack: &stack)
                continue
            }
            var rendered = ""
            var rest = Substring(line)
            while let open = rest.range(of: "{{") {
                if stack.allSatisfy(\.1) { rendered += rest[..<open.lowerBound] }
                guard let close = rest[open.upperBound...].range(of: "}}") else {
                    rest = rest[open.lowerBound...]
                    break
                }
                let tag = rest[open.upperBound..<close.lowerBound].trimmingWhitespace()
                rest = rest[close.upperBound...]
                if let first = tag.first, "#^/!".contains(first) {
                    try apply(tag, values: values, stack: &stack)
                } else {
                    guard let value = values[tag] else { throw .unknownKey(tag) }
                    if stack.allSatisfy(\.1) { rendered += value ?? "" }
                }
            }
            guard stack.allSatisfy(\.1) else { continue }
            rendered += rest
            output += rendered
            if !isLast { output += "\n" }
        }
        if let open = stack.last { throw .unbalanced(open.0) }
        return output
    }

    private func apply(_ tag: String, values: [String: String?], stack: inout [(String, Bool)]) throws(RenderError) {
        guard let kind = tag.first else { return }
        let name = String(tag.dropFirst()).trimmingWhitespace()
        switch kind {
        case "!": return
        case "#", "^":
            guard let value = values[name] else { throw .unknownKey(name) }
            let present = value != nil && value != "false" && value != ""
            stack.append((name, kind == "#" ? present : !present))
        case "/":
            guard let open = stack.popLast(), open.0 == name else { throw .unbalanced(name) }
        default: return
        }
    }

    /// The tag when `line` holds only a section/comment tag and spaces.
    private static func standaloneTag(_ line: Substring) -> String? {
        let trimmed = line.trimmingWhitespace()
        guard trimmed.hasPrefix("{{"), trimmed.hasSuffix("}}"), trimmed.count > 4 else { return nil }
        let inner = String(trimmed.dropFirst(2).dropLast(2)).trimmingWhitespace()
        guard let first = inner.first, "#^/!".contains(first), !inner.contains("{{"), !inner.contains("}}") else { return nil }
        return inner
    }
}

/// The templates shipped inside the binary (embedded at build time from the
/// repository's top-level `templates/`, the one source of truth), so an
/// installed `cachectl` needs no files beside it.
public enum EmbeddedTemplates {
    public static var cachefilesdConf: Template {
        Template(String(decoding: PackageResources.cachefilesd_conf_mustache, as: UTF8.self))
    }
    public static var cachefilesdService: Template {
        Template(String(decoding: PackageResources.cachefilesd_service_mustache, as: UTF8.self))
    }
}
