import CachectlSystem
import Foundation
import Testing

@testable import CachectlServe

/// The OpenAPI document (Sources/CachectlServe/openapi.json, served at /openapi.json)
/// against the server: the same routes, and real responses that match it.
@Suite(.serialized)
struct OpenAPITests {
    let spec: JSONValue

    init() throws {
        spec = try JSONDecoder().decode(JSONValue.self, from: Data(PackageResources.openapi_json))
    }

    var operations: [(method: String, path: String)] {
        guard case .object(let paths)? = spec["paths"] else { return [] }
        return paths.flatMap { path, item -> [(String, String)] in
            guard case .object(let methods) = item else { return [] }
            return methods.keys.filter { ["get", "post"].contains($0) }.map { ($0.uppercased(), path) }
        }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
    }

    @Test func routesAreExactlyTheDocumentedOperations() throws {
        let s = try ServeScratch()
        let router = try DashboardServer(options: ServeOptions(environment: s.environment)).makeRouter()
        let routes = router.routes.map { ($0.method.rawValue, $0.path.description) }
            .map { method, path in
                (
                    method,
                    path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(
                        separator: "/")
                )
            }
            .map { ($0.0, "/" + $0.1) }
            .sorted { ($0.1, $0.0) < ($1.1, $1.0) }
        #expect(routes.map { "\($0.0) \($0.1)" } == operations.map { "\($0.method) \($0.path)" })
        #expect(operations.count >= 17)
    }

    /// Each documented response object: its required keys, resolving one `$ref`.
    func required(_ schema: JSONValue?) -> [String] {
        var schema = schema
        if let ref = schema?["$ref"]?.string {
            schema = spec["components"]?["schemas"]?[String(ref.split(separator: "/").last!)]
        }
        guard case .array(let keys)? = schema?["required"] else { return [] }
        return keys.compactMap(\.string)
    }

    func documented(_ method: String, _ path: String) -> JSONValue? {
        spec["paths"]?[path]?[method.lowercased()]?["responses"]
    }

    func check(_ reply: HTTPReply, _ method: String, _ path: String) throws {
        let responses = try #require(documented(method, path), "\(method) \(path) is not documented")
        let response = try #require(
            responses[String(reply.status)], "\(method) \(path): \(reply.status) is not documented")
        var resolved = response
        if let ref = response["$ref"]?.string {
            resolved = spec["components"]?["responses"]?[String(ref.split(separator: "/").last!)] ?? response
        }
        guard case .object(let content)? = resolved["content"] else { return }
        let type = try #require(content.keys.first)
        #expect(
            reply.headers["content-type"]?.hasPrefix(type) == true,
            "\(method) \(path): \(reply.headers["content-type"] ?? "-") vs \(type)")
        if type == "application/json" {
            guard case .object(let body) = try reply.json() else {
                Issue.record("\(method) \(path): not an object")
                return
            }
            for key in required(content[type]?["schema"]) {
                #expect(body[key] != nil, "\(method) \(path) \(reply.status): no \(key)")
            }
        }
    }

    @Test func responsesMatchTheDocument() async throws {
        let s = try ServeScratch()
        try s.addModel("tiny.gguf", bytes: 4096)
        let spec = self
        try await withServer(ServeOptions(environment: s.environment, sampleInterval: 1)) { port in
            for (path, concrete) in [
                ("/", "/"), ("/openapi.json", "/openapi.json"), ("/api/status", "/api/status"),
                ("/api/cache", "/api/cache"),
                ("/api/shares", "/api/shares"), ("/api/tiers", "/api/tiers"), ("/api/models", "/api/models"),
                ("/api/history", "/api/history"), ("/api/jobs", "/api/jobs"),
            ] {
                let reply = try await request(port, "GET", concrete)
                #expect(reply.status == 200, "\(path)")
                try spec.check(reply, "GET", path)
            }
            // A job: started, listed, fetched, streamed; refusals use the Error schema.
            let started = try await request(port, "POST", "/api/models/tiny/demote")
            try spec.check(started, "POST", "/api/models/{name}/demote")
            let id = try #require(try started.json()["job"]?["id"]?.string)
            _ = try await waitForJob(port, id)
            try spec.check(try await request(port, "GET", "/api/jobs/\(id)"), "GET", "/api/jobs/{id}")
            try spec.check(try await request(port, "GET", "/api/jobs/\(id)/events"), "GET", "/api/jobs/{id}/events")
            try spec.check(try await request(port, "GET", "/api/jobs/nosuch"), "GET", "/api/jobs/{id}")
            try spec.check(
                try await request(port, "POST", "/api/models/nosuch/promote"), "POST", "/api/models/{name}/promote")
            try spec.check(
                try await request(port, "POST", "/api/models/tiny/warm", headers: ["Origin": "http://evil.example"]),
                "POST", "/api/models/{name}/warm")
            try spec.check(
                try await request(port, "POST", "/api/tiers", headers: ["Content-Type": "text/plain"], body: "x"),
                "POST", "/api/tiers")
            try spec.check(
                try await request(
                    port, "POST", "/api/tiers", headers: ["Content-Type": "application/json"],
                    body: #"{"name":"Bad/Name","type":"tmpfs","size":"1G"}"#), "POST", "/api/tiers")
            try spec.check(
                try await request(
                    port, "POST", "/api/tiers/fast/resize", headers: ["Content-Type": "application/json"],
                    body: #"{"size":"1G"}"#), "POST", "/api/tiers/{name}/resize")
            try spec.check(
                try await request(port, "POST", "/api/tiers/fast/destroy"), "POST", "/api/tiers/{name}/destroy")
        }
    }
}
