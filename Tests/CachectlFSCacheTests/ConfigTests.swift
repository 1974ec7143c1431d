import CachectlSystem
import Foundation
import Testing

@testable import CachectlFSCache

@Suite struct CachefilesdConfigTests {
    @Test func defaultsRenderTheTemplateWithoutOptionalLines() throws {
        let text = try CachefilesdConfig().render()
        let commands = text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(
            commands == [
                "dir /var/cache/fscache", "tag cachectl", "brun 10%", "bcull 7%", "bstop 3%",
                "frun 10%", "fcull 7%", "fstop 3%",
            ])
    }

    @Test func everyOptionRendersAndParsesBack() throws {
        var config = CachefilesdConfig()
        config.dir = "/srv/fscache"
        config.tag = "models"
        (config.brun, config.bcull, config.bstop) = (30, 20, 10)
        (config.frun, config.fcull, config.fstop) = (15, 8, 0)
        config.culltable = 16
        config.secctx = "system_u:system_r:cachefiles_kernel_t:s0"
        config.resumeThresholds = .init(blocks: 100, files: nil)
        config.nocull = true
        let text = try config.render()
        #expect(text.contains("\nculltable 16\n"))
        #expect(text.contains("\nresume_thresholds 100 -\n"))
        #expect(text.contains("\nnocull\n"))
        #expect(CachefilesdConfig.parse(text) == config)
    }

    /// (field that must be named, field to change, bad value)
    @Test(arguments: [
        ("brun", "brun", "7"), ("bcull", "bcull", "3"), ("bstop", "bstop", "-1"), ("brun", "brun", "100"),
        ("frun", "frun", "5"), ("fcull", "fcull", "3"),
        ("culltable", "culltable", "11"), ("culltable", "culltable", "21"),
        ("dir", "dir", "var/cache/fscache"), ("dir", "dir", "/var/cache\nbrun 99%"), ("dir", "dir", "/var/../etc"),
        ("tag", "tag", "two words"), ("tag", "tag", "a\rb"), ("secctx", "secctx", "x\nnocull"),
    ])
    func invalidValuesNameTheirField(expected: String, field: String, value: String) {
        var config = CachefilesdConfig()
        switch field {
        case "brun": config.brun = Int(value)!
        case "bcull": config.bcull = Int(value)!
        case "bstop": config.bstop = Int(value)!
        case "frun": config.frun = Int(value)!
        case "fcull": config.fcull = Int(value)!
        case "culltable": config.culltable = Int(value)!
        case "dir": config.dir = value
        case "tag": config.tag = value
        case "secctx": config.secctx = value
        default: Issue.record("unknown field \(field)")
        }
        do {
            try config.validate()
            Issue.record("\(field)=\(value.debugDescription) was accepted")
        } catch {
            #expect(error.field == [.key(expected)])
            #expect(error.description.contains(expected))
        }
        #expect(throws: CachectlError.self) { try config.render() }
    }

    @Test func decodesWithDefaultsForMissingFields() throws {
        let json = #"{"dir": "/srv/cache", "brun": 20, "resume_thresholds": {"blocks": 5}}"#
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let config = try decoder.decode(CachefilesdConfig.self, from: Data(json.utf8))
        #expect(config.dir == "/srv/cache")
        #expect(config.brun == 20 && config.bcull == 7 && config.tag == "cachectl")
        #expect(config.resumeThresholds == .init(blocks: 5, files: nil))
    }

    @Test func parsesTheDebianPackageDefaultFile() {
        let text = """
            dir /var/cache/fscache
            tag mycache
            brun 10%
            bcull 7%
            bstop 3%
            # secctx system_u:system_r:cachefiles_kernel_t:s0
            """
        let config = CachefilesdConfig.parse(text)
        #expect(config.tag == "mycache" && config.bstop == 3 && config.secctx == nil)
        #expect(config.frun == 7)  // cachefilesd's own default when absent
    }
}

@Suite struct TemplateTests {
    @Test func sectionsAndStandaloneLines() throws {
        let template = Template("a {{x}}\n{{#y}}\ny={{y}}\n{{/y}}\n{{^y}}\nno y\n{{/y}}\nend\n")
        #expect(try template.render(["x": "1", "y": nil]) == "a 1\nno y\nend\n")
        #expect(try template.render(["x": "1", "y": "2"]) == "a 1\ny=2\nend\n")
    }

    @Test func unknownKeysAndUnbalancedSectionsFail() {
        #expect(throws: Template.RenderError.unknownKey("z")) { try Template("{{z}}").render([:]) }
        #expect(throws: Template.RenderError.unbalanced("a")) { try Template("{{#a}}\nx\n").render(["a": "1"]) }
    }

    @Test func embeddedTemplateIsTheRepositoryFile() throws {
        // The binary embeds templates/cachefilesd.conf.mustache; it must match the file in the repo.
        let repoFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../templates/cachefilesd.conf.mustache").standardized.path
        let onDisk = try String(contentsOfFile: repoFile, encoding: .utf8)
        #expect(EmbeddedTemplates.cachefilesdConf.text == onDisk)
    }
}

@Suite struct UnifiedDiffTests {
    @Test func showsChangedLinesWithContext() {
        let diff = UnifiedDiff.make(old: "a\nb\nc\n", new: "a\nB\nc\n", oldLabel: "x", newLabel: "y")
        #expect(diff == "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
        #expect(UnifiedDiff.make(old: "same\n", new: "same\n", oldLabel: "x", newLabel: "y") == "")
        #expect(
            UnifiedDiff.make(old: "", new: "new\n", oldLabel: "x", newLabel: "y")
                == "--- x\n+++ y\n@@ -0,0 +1,1 @@\n+new\n")
    }
}
