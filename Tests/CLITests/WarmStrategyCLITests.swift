import CachectlSystem
import Foundation
import Testing

/// `warm` says which strategy it used per source, and the options override it.
@Suite struct WarmStrategyCLITests {
    @Test func theDefaultStrategyForALocalFileIsReported() throws {
        let file = try ScratchFile(size: 3 << 20)
        let result = try CLI.run(["warm", "--json", file.path])
        #expect(result.status == 0)
        let json = try CLI.json(result)
        #expect(json["strategy"] as? String == "local: 16 readers x 512K contiguous, no hints, spliced")
        let files = try #require(json["files"] as? [[String: Any]])
        #expect(files.first?["source"] as? String == "local")
        let strategies = try #require(json["strategies"] as? [[String: Any]])
        #expect(strategies.first?["source"] as? String == "local")
        #expect(strategies.first?["files"] as? Int == 1)
    }

    @Test func optionsOverrideTheStrategyAndTheSummarySaysSo() throws {
        let file = try ScratchFile(size: 3 << 20)
        let result = try CLI.run([
            "warm", "--jobs", "3", "--chunk", "1M", "--layout", "interleaved", "--hints", file.path,
        ])
        #expect(result.status == 0)
        #expect(result.stdout.contains("read as local: 3 readers x 1M interleaved, hints"))
        let bad = try CLI.run(["warm", "--layout", "sideways", "--json", file.path])
        #expect(bad.status == 2)
        #expect((try CLI.json(bad)["msg"] as? String)?.contains("layout") == true)
    }
}
