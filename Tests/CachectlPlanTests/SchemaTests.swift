import Foundation
import Testing

@testable import CachectlPlan

/// integration/schema/cachectl.schema.json stays in step with the decoder: the
/// shipped example validates against it, and each object's properties are
/// exactly the keys the decoder accepts there.
@Suite struct SchemaTests {
    let schema: [String: Any] = {
        let data =
            FileManager.default.contents(atPath: repositoryRoot + "/integration/schema/cachectl.schema.json") ?? Data()
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }()

    /// A document that opens every mapping the format has.
    let everySection = """
        version: 1
        cache: {dir: /c, resume_thresholds: {blocks: 1, files: 2}}
        shares: [{mountpoint: /m}]
        tiers: [{name: a, type: tmpfs, size: 1G}, {name: r, type: nvmeof, size: 1G, remote: {nqn: n, address: 10.0.0.1}}]
        models: {dir: /d, cold_store: /s, pinned: {m: a}}
        nvmeof:
          exports: [{name: e, size: 64M, address: 10.0.0.1, allow_any_host: true}]
          connections: [{nqn: nqn.2014-08.org.cachectl:e, address: 10.0.0.1}]
        warm: [{name: w, files: [/x]}]
        """

    @Test func schemaPropertiesAreExactlyTheKeysTheDecoderAccepts() throws {
        let accepted = try ConfigFile.acceptedKeys(everySection)
        var checked = 0
        for (path, keys) in accepted {
            let object = try #require(Self.subschema(schema, at: path, defs: schema), "schema has no object at \(path)")
            let properties = Set((object["properties"] as? [String: Any] ?? [:]).keys)
            #expect(
                properties == keys,
                "at \(path.isEmpty ? "top level" : path): schema \(properties.sorted()) vs decoder \(keys.sorted())")
            #expect(
                object["additionalProperties"] as? Bool == false,
                "\(path) must forbid unknown keys, as the decoder does")
            checked += 1
        }
        #expect(checked == 11, "\(accepted.keys.sorted())")
    }

    @Test func shippedExampleValidatesAgainstTheSchema() throws {
        let text = try String(contentsOfFile: repositoryRoot + "/integration/examples/cachectl.yaml", encoding: .utf8)
        let document = try #require(try Self.load(text))
        #expect(Self.validate(document, schema, defs: schema, path: "") == [])
        // And with the commented-out nvmeof section switched on.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex(of: "# nvmeof:"))
        let end = try #require(lines.firstIndex(of: "# and in tiers:"))
        let block = lines[start..<end].map { String($0.dropFirst(2)) }.filter {
            !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#")
        }
        let uncommented = text + "\n" + block.joined(separator: "\n") + "\n"
        let nvmeof = try #require(try Self.load(uncommented) as? [String: Any])
        #expect(nvmeof["nvmeof"] != nil)
        #expect(Self.validate(nvmeof, schema, defs: schema, path: "") == [])
        _ = try ConfigFile.parse(uncommented, file: "example-with-nvmeof.yaml")
    }

    @Test func theValidatorHereCatchesWhatTheSchemaForbids() throws {
        let bad = try #require(
            try Self.load("tiers: [{name: a, type: ramfs, size: 1G, colour: red}]\ncache: {brun: ten}\n"))
        let problems = Self.validate(bad, schema, defs: schema, path: "")
        #expect(problems.contains { $0.contains("tiers[0].type") })
        #expect(problems.contains { $0.contains("tiers[0].colour") })
        #expect(problems.contains { $0.contains("cache.brun") })
    }

    /// The document as plain values (what `Yams.load` gave before): mappings,
    /// lists, and scalars by their resolved tag.
    static func load(_ text: String) throws -> Any? {
        try YAMLComposer.compose(text).map(plainValue)
    }

    static func plainValue(_ node: YAMLNode) -> Any {
        switch node {
        case .mapping(let mapping):
            return Dictionary(
                mapping.pairs.map { ($0.key.string ?? "", plainValue($0.value)) },
                uniquingKeysWith: { first, _ in first })
        case .sequence(let sequence):
            return sequence.items.map(plainValue)
        case .scalar(let scalar):
            switch scalar.tag {
            case .null: return NSNull()
            case .bool: return scalar.bool ?? scalar.value
            case .int: return scalar.int ?? scalar.value
            case .float: return scalar.double ?? scalar.value
            default: return scalar.value
            }
        }
    }

    // MARK: - a small JSON Schema subset: type, enum, properties, required,
    // additionalProperties, items, pattern, minimum/maximum, anyOf, $ref.

    static func subschema(_ schema: [String: Any], at path: String, defs: [String: Any]) -> [String: Any]? {
        var node = schema
        for part in path.split(separator: ".") where !part.isEmpty {
            var name = String(part)
            let isList = name.hasSuffix("[]")
            if isList { name.removeLast(2) }
            guard let next = (node["properties"] as? [String: Any])?[name] as? [String: Any] else { return nil }
            node = isList ? (next["items"] as? [String: Any] ?? [:]) : next
        }
        return node
    }

    static func validate(_ value: Any, _ schema: [String: Any], defs: [String: Any], path: String) -> [String] {
        if let ref = schema["$ref"] as? String, let name = ref.split(separator: "/").last,
            let target = (defs["$defs"] as? [String: Any])?[String(name)] as? [String: Any]
        {
            return validate(value, target, defs: defs, path: path)
        }
        if let options = schema["anyOf"] as? [[String: Any]] {
            return options.contains { validate(value, $0, defs: defs, path: path).isEmpty }
                ? [] : ["\(path): matches no alternative"]
        }
        if let choices = schema["enum"] as? [Any], !choices.contains(where: { "\($0)" == "\(value)" }) {
            return ["\(path): \(value) not in enum"]
        }
        var problems: [String] = []
        switch schema["type"] as? String {
        case "object":
            guard let object = value as? [String: Any] else { return ["\(path): not an object"] }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                problems.append("\(path): missing \(key)")
            }
            for (key, child) in object {
                let childPath = path.isEmpty ? key : path + "." + key
                if let sub = properties[key] as? [String: Any] {
                    problems += validate(child, sub, defs: defs, path: childPath)
                } else if let additional = schema["additionalProperties"] as? [String: Any] {
                    problems += validate(child, additional, defs: defs, path: childPath)
                } else if schema["additionalProperties"] as? Bool == false {
                    problems.append("\(childPath): not allowed")
                }
            }
        case "array":
            guard let array = value as? [Any] else { return ["\(path): not an array"] }
            if let items = schema["items"] as? [String: Any] {
                for (i, item) in array.enumerated() {
                    problems += validate(item, items, defs: defs, path: "\(path)[\(i)]")
                }
            }
        case "string":
            guard let string = value as? String else { return ["\(path): not a string"] }
            if let pattern = schema["pattern"] as? String, string.range(of: pattern, options: .regularExpression) == nil
            {
                problems.append("\(path): '\(string)' does not match \(pattern)")
            }
        case "integer":
            guard let number = value as? Int else { return ["\(path): not an integer"] }
            if let minimum = schema["minimum"] as? Int, number < minimum {
                problems.append("\(path): below \(minimum)")
            }
            if let maximum = schema["maximum"] as? Int, number > maximum {
                problems.append("\(path): above \(maximum)")
            }
        case "boolean":
            if !(value is Bool) { problems.append("\(path): not a boolean") }
        default:
            break
        }
        return problems
    }
}
