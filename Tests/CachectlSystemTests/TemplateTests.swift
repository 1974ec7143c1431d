import CachectlSystem
import Testing

/// The one template renderer: the page's mustache subset (HTML) and the
/// config files' raw insertion with the standalone-line rule.
@Suite struct TemplateRendererTests {
    typealias V = Template.Value

    @Test func htmlEscapesValuesButNotTripleMustaches() throws {
        let t = Template(#"<a title="{{x}}">{{x}}</a>{{{x}}}{{&x}}"#, escaping: .html)
        #expect(
            try t.render(["x": #"<&"'>"#])
                == #"<a title="&lt;&amp;&quot;&#39;&gt;">&lt;&amp;&quot;&#39;&gt;</a><&"'><&"'>"#)
        // The config flavour inserts values as they are.
        #expect(try Template("{{x}}").render(["x": "<&>"]) == "<&>")
    }

    @Test func loopsOverObjectsAndTextWithLookupUpTheStack() throws {
        let t = Template(
            "{{#rows}}[{{name}} in {{table}}{{#tags}} {{.}}{{/tags}}]{{/rows}}{{^rows}}none{{/rows}}", escaping: .html)
        let rows: V = [["name": "a", "tags": ["x", "<y>"]], ["name": "b", "tags": []]]
        #expect(try t.render(["table": "t", "rows": rows]) == "[a in t x &lt;y&gt;][b in t]")
        #expect(try t.render(["table": "t", "rows": []]) == "none")
        // An inner name shadows an outer one.
        let shadow = Template("{{#rows}}{{table}}{{/rows}}", escaping: .html)
        #expect(try shadow.render(["table": "outer", "rows": [["table": "inner"], [:]]]) == "innerouter")
    }

    @Test func sectionsOverBoolsNullTextAndObjectsAndDottedNames() throws {
        let t = Template(
            "{{#on}}on{{/on}}{{^on}}off{{/on}}|{{#pin}}pinned {{pin}}{{/pin}}{{^pin}}free{{/pin}}|{{#c.usage}}{{free}} of {{c.total}}{{/c.usage}}{{c.reads}}",
            escaping: .html)
        let full: V = ["on": true, "pin": "fast", "c": ["total": "9", "reads": "3", "usage": ["free": "1"]]]
        #expect(try t.render(full) == "on|pinned fast|1 of 93")
        let empty: V = ["on": false, "pin": .null, "c": ["total": "9", "reads": .null, "usage": .null]]
        #expect(try t.render(empty) == "off|free|")
        // Mustache: any text is true in HTML, even empty or "false"; the config flavour keeps "false" and "" false.
        #expect(try Template("{{#x}}yes{{/x}}", escaping: .html).render(["x": "false"]) == "yes")
        #expect(try Template("{{#x}}yes{{/x}}").render(["x": "false"]) == "")
        #expect(try Template("{{#x}}yes{{/x}}").render(["x": ""]) == "")
    }

    @Test func standaloneSectionAndCommentLinesLeaveNoLine() throws {
        let t = Template("a\n  {{#x}}  \nb {{x}}\n{{/x}}\n{{! note }}\n{{^x}}\nno\n{{/x}}\nc {{#x}}d{{/x}}\n{{x}}\n")
        #expect(try t.render(["x": "1"]) == "a\nb 1\nc d\n1\n")
        #expect(try t.render(["x": nil]) == "a\nno\nc \n\n")
        // The last line, without a newline, stands alone too.
        #expect(try Template("{{#x}}\nlast\n{{/x}}").render(["x": nil]) == "")
        #expect(try Template("{{#x}}\nlast\n{{/x}}").render(["x": "1"]) == "last\n")
    }

    @Test func strictAboutNamesAndSyntax() {
        let html = Template("{{#rows}}{{nme}}{{/rows}}", escaping: .html)
        #expect(throws: Template.RenderError.unknownKey("nme")) { try html.render(["rows": [["name": "a"]]]) }
        #expect(throws: Template.RenderError.unknownKey("a.c")) { try Template("{{a.c}}").render(["a": ["b": "x"]]) }
        #expect(throws: Template.RenderError.notText("a")) { try Template("{{a}}").render(["a": ["b": "x"]]) }
        // Flat values: a name in a section that does not render must still be given.
        #expect(throws: Template.RenderError.unknownKey("typo")) {
            try Template("{{#x}}{{typo}}{{/x}}").render(["x": nil])
        }
        #expect(throws: Template.RenderError.unbalanced("b")) {
            try Template("{{#a}}{{/b}}").render(["a": "1", "b": "1"])
        }
        #expect(throws: Template.RenderError.unbalanced("a")) { try Template("{{/a}}").render(["a": "1"]) }
        #expect(throws: Template.RenderError.unsupported("> partial")) { try Template("{{> partial}}").check() }
        #expect(throws: Template.RenderError.unsupported("{{x")) { try Template("{{x").check() }
    }
}
