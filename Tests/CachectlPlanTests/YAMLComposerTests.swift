import CachectlFSCache
import CachectlWarm
import Foundation
import Testing

@testable import CachectlPlan

/// The YAML reader on libyaml: positions, aliases and their limits, one
/// document, syntax errors, and the YAML 1.1 scalars as Yams resolved them.
@Suite struct YAMLComposerTests {
    private func compose(_ text: String) throws -> YAMLNode {
        try #require(try YAMLComposer.compose(text))
    }

    private func composeError(_ text: String) -> YAMLError? {
        do {
            _ = try YAMLComposer.compose(text)
            return nil
        } catch {
            return error
        }
    }

    private func mapping(_ node: YAMLNode?) throws -> YAMLNode.Mapping {
        guard case .mapping(let mapping)? = node else {
            throw YAMLError(message: "not a mapping: \(String(describing: node))")
        }
        return mapping
    }

    @Test func marksOfNestedKeysAndValuesAreOneBasedLineAndColumn() throws {
        let root = try mapping(
            try compose(
                """
                # a comment
                cache:
                  dir: /c
                  resume_thresholds:
                    blocks: 1
                tiers:
                  - {name: fast, size: 1G}
                """))
        #expect(root.pairs[0].key.mark == YAMLMark(line: 2, column: 1))
        let cache = try mapping(root.value(forKey: "cache"))
        #expect(cache.mark == YAMLMark(line: 3, column: 3))
        #expect(cache.pairs[0].value.mark == YAMLMark(line: 3, column: 8))
        let thresholds = try mapping(cache.value(forKey: "resume_thresholds"))
        #expect(thresholds.pairs[0].key.mark == YAMLMark(line: 5, column: 5))
        #expect(thresholds.pairs[0].value.mark == YAMLMark(line: 5, column: 13))
        guard case .sequence(let tiers)? = root.value(forKey: "tiers") else {
            Issue.record("tiers is no list")
            return
        }
        let tier = try mapping(tiers.items.first)
        #expect(tier.mark == YAMLMark(line: 7, column: 5))
        #expect(tier.pairs[1].key.mark == YAMLMark(line: 7, column: 18))
        #expect(tier.pairs[1].value.mark == YAMLMark(line: 7, column: 24))
    }

    @Test func columnsCountCharactersNotBytes() throws {
        let root = try mapping(try compose("modèle: {ä: x, b: y}\n"))
        let inner = try mapping(root.pairs[0].value)
        #expect(inner.pairs[1].key.mark == YAMLMark(line: 1, column: 16))
    }

    @Test func scalarStylesAndExplicitTagsAreKept() throws {
        let root = try mapping(
            try compose(
                """
                a: plain
                b: 'single'
                c: "double"
                d: |
                  literal
                e: >
                  folded
                f: !!int "7"
                g: !custom x
                """))
        let styles = root.pairs.map { pair -> YAMLNode.Scalar.Style? in
            if case .scalar(let scalar) = pair.value { return scalar.style }
            return nil
        }
        #expect(styles == [.plain, .singleQuoted, .doubleQuoted, .literal, .folded, .doubleQuoted, .plain])
        guard case .scalar(let tagged)? = root.value(forKey: "f"), case .scalar(let custom)? = root.value(forKey: "g"),
            case .scalar(let literal)? = root.value(forKey: "d")
        else {
            Issue.record("not scalars")
            return
        }
        #expect(tagged.explicitTag == "tag:yaml.org,2002:int" && tagged.tag == .int)
        #expect(tagged.int == nil, "Yams built integers from plain scalars only")
        #expect(custom.tag == .other("!custom"))
        #expect(literal.value == "literal\n" && literal.tag == .str)
    }

    @Test func aliasesAreTheAnchoredNode() throws {
        let root = try mapping(
            try compose(
                """
                base: &b {name: a, size: 1G}
                list: &l [x, y]
                copy: *b
                again: *l
                """))
        guard case .mapping(let copy)? = root.value(forKey: "copy"),
            case .sequence(let again)? = root.value(forKey: "again")
        else {
            Issue.record("aliases not resolved")
            return
        }
        #expect(copy.pairs.map { $0.key.string } == ["name", "size"])
        #expect(again.items.map(\.string) == ["x", "y"])
        // The alias is the anchored node, marked where it starts (its anchor, as libyaml marks it).
        #expect(copy.mark == YAMLMark(line: 1, column: 7))
    }

    @Test func anAliasInsideItsOwnAnchorIsACycle() {
        let error = composeError("a: &x [1, *x]\n")
        #expect(error?.message.contains("cycle") == true, "\(String(describing: error))")
        #expect(error?.mark == YAMLMark(line: 1, column: 11))
        let mapCycle = composeError("a: &m\n  b: *m\n")
        #expect(mapCycle?.message.contains("cycle") == true)
        #expect(mapCycle?.mark == YAMLMark(line: 2, column: 6))
    }

    @Test func anUndefinedAliasIsASyntaxError() {
        let found = errors("warm:\n  - name: a\n    files: *nothing\n")
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("YAML syntax: found undefined alias") == true)
        #expect(found.first?.line == 3 && found.first?.column == 12)
    }

    @Test func exponentialAliasesStopAtTheCap() {
        // Each level is ten aliases of the one before: 10^5 lists by level e.
        let levels =
            ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
            + ["b", "c", "d", "e", "f"].enumerated().map { i, name in
                let previous = ["a", "b", "c", "d", "e"][i]
                return "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]"
            }
        let started = ContinuousClock.now
        let found = errors(levels.joined(separator: "\n") + "\n")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(found.count == 1)
        #expect(
            found.first?.message.contains("aliases expand to more than \(YAMLComposer.maxAliasExpansion) nodes")
                == true,
            "\(found)")
        #expect(found.first?.line == 5, "level e is where the total passes the cap")
        // Below the cap, sharing is fine.
        #expect(composeError(levels.prefix(3).joined(separator: "\n")) == nil)
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        let found = errors("tiers: " + deep + "\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("nest deeper than") == true, "\(found)")
    }

    @Test func aSecondDocumentIsAnError() {
        let found = errors("version: 1\n---\nversion: 1\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("second document") == true, "\(found)")
        #expect(found.first?.line == 2 && found.first?.column == 1)
        // An explicit start and end of the one document are fine.
        #expect(errors("---\nversion: 1\n...\n").isEmpty)
    }

    @Test func aKeyGivenTwiceIsAnErrorAtTheSecond() {
        let found = errors("cache:\n  dir: /a\n  dir: /b\n")
        #expect(found.count == 1)
        #expect(
            found.first?.message.contains("'dir' is given twice in one mapping (first on line 2)") == true, "\(found)")
        #expect(found.first?.line == 3 && found.first?.column == 3)
    }

    @Test func tabsIndentingAreASyntaxErrorWithItsPlace() {
        let found = errors("cache:\n\tdir: /x\n")
        #expect(found.count == 1)
        #expect(
            found.first?.message
                == "YAML syntax: found character that cannot start any token while scanning for the next token")
        #expect(found.first?.line == 2 && found.first?.column == 1)
    }

    @Test func aTabInsideAValueIsKept() throws {
        let root = try mapping(try compose("a: \"x\\ty\"\nb: 'p\tq'\n"))
        #expect(root.pairs.map(\.value.string) == ["x\ty", "p\tq"])
    }

    @Test(arguments: [
        ("cache:\n  dir: [a, b\n", 3, 1, "YAML syntax: did not find expected ',' or ']' while parsing a flow sequence"),
        ("cache:\n  dir: /x\n bad: 1\n", 3, 2, "YAML syntax: did not find expected key while parsing a block mapping"),
        ("a: 'open\n", 2, 1, "YAML syntax: found unexpected end of stream while scanning a quoted scalar"),
        ("a: b: c\n", 1, 5, "YAML syntax: mapping values are not allowed in this context"),
        ("a: \u{1}\n", 1, 4, "YAML syntax: control characters are not allowed (#x1)"),
    ])
    func syntaxErrorsSayWhatAndWhere(yaml: String, line: Int, column: Int, message: String) {
        let found = errors(yaml)
        #expect(found.count == 1)
        #expect(found.first?.message == message, "\(found)")
        #expect(found.first?.line == line && found.first?.column == column, "\(found)")
    }

    // MARK: - YAML 1.1 scalars, as Yams' default resolver read them

    @Test func yaml11ScalarsDecodeAsBefore() throws {
        let config = try parse(
            """
            cache:
              dir: /c
              nocull: yes
              brun: 0x1F
              bcull: 1_0
              bstop: 0o5
            models: ~
            warm:
              - name: a
                files: [/x]
                on_apply: off
                jobs: 0b11
              - name: b
                files: [/y]
                on_apply: On
            """)
        #expect(config.cache?.nocull == true)
        #expect(config.cache?.brun == 31 && config.cache?.bcull == 10 && config.cache?.bstop == 5)
        #expect(config.models == nil)
        #expect(config.warm[0].onApply == false && config.warm[1].onApply == true)
        #expect(config.warm[0].jobs == 3)
        // Quoted, they are strings: a type error where a bool or integer belongs.
        #expect(errors("cache:\n  nocull: 'no'\n").first?.message.contains("expected true or false") == true)
        #expect(errors("cache:\n  brun: \"0x1F\"\n").first?.message.contains("expected an integer") == true)
        // And a plain `no` where a string belongs is still the text.
        #expect(try parse("cache:\n  dir: /c\n  tag: no\n").cache?.tag == "no")
    }

    @Test(arguments: [
        ("0x1F", 31), ("1_000", 1000), ("0o17", 15), ("017", 15), ("0b101", 5), ("1:30", 90), ("-1:30", -90),
        ("+12", 12), ("-0x10", -16), ("0", 0), ("190:20:30", 685_230),
    ])
    func integers(text: String, value: Int) {
        let scalar = YAMLNode.Scalar(value: text, style: .plain, mark: YAMLMark(line: 1, column: 1))
        #expect(scalar.tag == .int)
        #expect(scalar.int == value)
    }

    @Test func sexagesimalOverflowIsNoNumberNotACrash() {
        let scalar = YAMLNode.Scalar(
            value: "1" + String(repeating: ":59", count: 20), style: .plain, mark: YAMLMark(line: 1, column: 1))
        #expect(scalar.tag == .int)
        #expect(scalar.int == nil)
    }

    @Test(arguments: [
        ("1.5", 1.5), ("1e3", 1000), ("1_000.5", 1000.5), (".5", 0.5), ("-2.5E-1", -0.25), ("1:30.5", 90.5),
        ("+.inf", .infinity), ("-.Inf", -.infinity),
    ])
    func floats(text: String, value: Double) {
        let scalar = YAMLNode.Scalar(value: text, style: .plain, mark: YAMLMark(line: 1, column: 1))
        #expect(scalar.tag == .float)
        #expect(scalar.double == value)
    }

    @Test(arguments: [
        ("yes", YAMLTag.bool), ("NO", .bool), ("On", .bool), ("off", .bool), ("True", .bool), ("tRue", .str),
        ("~", .null), ("null", .null), ("", .null), ("nULL", .str), ("<<", .merge), ("=", .value),
        ("2001-12-14", .timestamp), ("2001-12-14t21:59:43.10-05:00", .timestamp),
        ("2001-12-14 21:59:43.10 Z", .timestamp),
        ("2001-1-4", .str), (".nan", .float), ("-.nan", .str), ("-.5", .str), ("1_", .int), ("0x", .str), ("8Q", .str),
        ("1G", .str), ("10.0.0.1", .str), ("/mnt/models", .str),
    ])
    func plainScalarTags(text: String, tag: YAMLTag) {
        #expect(YAMLTag.resolve(plain: text) == tag)
    }

    /// The resolver here against Yams' own regular expressions (copied from its
    /// Resolver.swift), run by NSRegularExpression, over every short string of
    /// the characters the rules care about and a few longer ones.
    @Test func resolverMatchesYamsRegularExpressions() throws {
        let rules: [(YAMLTag, String)] = [
            (.bool, "^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
            (
                .int,
                "^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
            ),
            (
                .float,
                "^(?:[-+]?(?:[0-9][0-9_]*)(?:\\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"
            ),
            (.merge, "^(?:<<)$"),
            (.null, "^(?:~|null|Null|NULL|)$"),
            (
                .timestamp,
                "^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
            ),
            (.value, "^(?:=)$"),
        ]
        let compiled = try rules.map { ($0.0, try NSRegularExpression(pattern: $0.1)) }
        func yams(_ text: String) -> YAMLTag {
            let range = NSRange(location: 0, length: text.utf16.count)
            return compiled.first { $0.1.firstMatch(in: text, range: range) != nil }?.0 ?? .str
        }
        var corpus: [String] = [""]
        let alphabet = ["0", "1", "6", "9", "_", "+", "-", ".", ":", "e", "x", "o", "b", "F"]
        var level = [""]
        for _ in 1...4 {
            level = level.flatMap { prefix in alphabet.map { prefix + $0 } }
            corpus += level
        }
        corpus += [
            "2001-12-14", "2001-1-4 1:02:03", "2001-12-14T21:59:43.10Z", "2001-12-14 21:59:43.10 -5",
            "2001-12-14 21:59:43 +05:30",
            "2001-12-14 21:59:43 +05:3", "2001-12-14  21:59:43", "2001-12-14T21:59:4", "12001-12-14", "190:20:30.15",
            "1:60", "1:5:07",
            ".inf", "-.INF", "+.Inf", ".NaN", ".nAn", "1e+5", "1e", "1.e5", ".5e+1", ".5e1", "0x_1F", "0b", "0o", "00",
            "-0", "+0b1",
            "yes", "Yes", "yES", "<<", "=", "~", "Null", "1G", "8Q", "10.0.0.1", "nqn.2014-08.org.cachectl:e", "0.5.1",
            "1__",
        ]
        var differing: [String] = []
        for text in corpus where YAMLTag.resolve(plain: text) != yams(text) {
            differing.append("'\(text)': \(YAMLTag.resolve(plain: text)) vs \(yams(text))")
        }
        #expect(differing.isEmpty, "\(differing.prefix(20))")
        #expect(corpus.count > 40_000)
    }
}
