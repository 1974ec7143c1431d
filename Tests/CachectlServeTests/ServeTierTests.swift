import CachectlSystem
import CachectlTestSupport
import CachectlTiers
import Foundation
import Glibc
import Testing

@testable import CachectlServe

/// Promote and demote through the API into a real tmpfs tier. Run as root in a
/// private mount namespace: `unshare -m --propagation private swift test --filter CachectlServeTests`.
@Suite(.serialized, .rootInPrivateMountNamespace)
struct ServeTierTests {
    @Test func promoteAndDemoteThroughTheAPI() async throws {
        let s = try ServeScratch()
        try s.addModel("llama-tiny.gguf", bytes: 24 << 20)
        try s.tmpfsTier("fast")
        let link = s.models + "/llama-tiny.gguf"
        try await withServer(ServeOptions(environment: s.environment, sampleInterval: 0.2)) { port in
            let started = try await request(
                port, "POST", "/api/models/llama-tiny/promote",
                headers: ["Content-Type": "application/json"], body: #"{"tier":"fast"}"#)
            #expect(started.status == 202)
            let id = try #require(try started.json()["job"]?["id"]?.string)
            // The event stream: progress events, then one done event with the result.
            let events = try await onOwnThread("sse") {
                try requestBlocking(
                    port, "GET", "/api/jobs/\(id)/events",
                    onChunk: { $0.contains("event: done") && $0.hasSuffix("\n\n") })
            }
            #expect(events.status == 200 && events.headers["content-type"] == "text/event-stream")
            let done = try #require(
                events.text.components(separatedBy: "event: done\ndata: ").last?.components(separatedBy: "\n").first)
            let job = try JSONDecoder().decode(JSONValue.self, from: Data(done.utf8))
            #expect(job["state"]?.string == "succeeded", "\(job)")
            #expect(job["done_bytes"] == .int(24 << 20) || job["done_bytes"] == .uint(24 << 20))
            #expect(job["result"]?["tier"]?.string == "fast" && job["result"]?["action"]?.string == "promoted")

            // The model is hot: the link points into the tmpfs, which holds the bytes.
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: link)
            #expect(target == s.root + "/tiers/fast/llama-tiny.gguf")
            #expect(try MountTableCheck.fstype(of: s.root + "/tiers/fast") == "tmpfs")
            let models = try await request(port, "GET", "/api/models").json()
            #expect(models["models"] == .array([try JSONValue(encoding: try s.tiers.listModels()[0])]))
            guard case .array(let list)? = models["models"] else {
                Issue.record("no models")
                return
            }
            #expect(list.first?["location"]?.string == "fast")
            let status = try await request(port, "GET", "/api/status").json()
            guard case .array(let tiers)? = status["tiers"] else {
                Issue.record("no tiers")
                return
            }
            #expect(tiers.first?["models"] == .array([.string("llama-tiny")]))

            // Demote: back to the cold store, the copy gone.
            let demote = try await request(port, "POST", "/api/models/llama-tiny/demote")
            let demoted = try await waitForJob(port, try #require(try demote.json()["job"]?["id"]?.string))
            #expect(demoted["state"]?.string == "succeeded" && demoted["result"]?["action"]?.string == "demoted")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == s.cold + "/llama-tiny.gguf")
            #expect(!FileManager.default.fileExists(atPath: s.root + "/tiers/fast/llama-tiny.gguf"))

            // Warm reads the model through its link.
            let warm = try await request(port, "POST", "/api/models/llama-tiny/warm")
            let warmed = try await waitForJob(port, try #require(try warm.json()["job"]?["id"]?.string))
            #expect(warmed["state"]?.string == "succeeded", "\(warmed)")
        }
    }
}

enum MountTableCheck {
    static func fstype(of path: String) throws -> String? {
        let text = try AtomicFile.readText("/proc/self/mountinfo")
        return text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), fields.count > 4, fields[4] == path else { return nil }
            return String(fields[dash + 1])
        }.last
    }
}
