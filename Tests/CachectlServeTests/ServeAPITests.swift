import CachectlSystem
import CachectlTiers
import Foundation
import Glibc
import Testing

@testable import CachectlServe

/// Real HTTP against a real server on an ephemeral loopback port.
@Suite(.serialized)
struct ServeSecurityTests {
    static let token = "0123456789abcdef0123456789abcdef"

    func tokenFile(_ s: ServeScratch, mode: mode_t = 0o600, text: String = token + "\n") throws -> String {
        let path = s.root + "/serve.token"
        _ = try AtomicFile.write(Array(text.utf8), to: path, mode: mode)
        chmod(path, mode)
        return path
    }

    @Test func optionsAreCheckedBeforeBinding() throws {
        let s = try ServeScratch()
        // Any address other than loopback needs a token file.
        #expect(
            throws: CachectlError.usage(
                ["token_file"],
                "token file is required to listen on 0.0.0.0: only loopback (127.0.0.1, ::1) may be served without a token"
            )
        ) {
            try ServeOptions(host: "0.0.0.0", environment: s.environment).validate()
        }
        #expect(try ServeOptions(host: "127.0.0.1").validate() == nil)
        #expect(try ServeOptions(host: "::1").validate() == nil)
        #expect((try? ServeOptions(host: "localhost.evil").validate()) == nil)
        #expect((try? ServeOptions(port: 70000).validate()) == nil)
        // The token file: 0600, this user's, 16+ printable characters; the token is never in a message.
        let loose = try tokenFile(s, mode: 0o644)
        do {
            _ = try ServeOptions(host: "0.0.0.0", tokenFile: loose).validate()
            Issue.record("a 0644 token file was accepted")
        } catch {
            #expect(
                error.field?.flag == "--token-file" && error.message.contains("chmod 600")
                    && !error.description.contains(Self.token))
        }
        let short = try tokenFile(s, text: "short\n")
        #expect((try? ServeOptions(host: "0.0.0.0", tokenFile: short).validate()) == nil)
        let good = try tokenFile(s)
        #expect(try ServeOptions(host: "0.0.0.0", tokenFile: good).validate() == Self.token)
    }

    @Test func refusesWithoutTokenWrongTokenCrossOriginAndForeignPaths() async throws {
        let s = try ServeScratch()
        try s.addModel("tiny.gguf", bytes: 4096)
        let options = ServeOptions(tokenFile: try tokenFile(s), environment: s.environment, sampleInterval: 1)
        let auth = ["Authorization": "Bearer \(Self.token)"]
        try await withServer(options) { port in
            // No token, wrong token: 401 with WWW-Authenticate, for reads and changes alike.
            let none = try await request(port, "GET", "/api/status")
            #expect(none.status == 401 && none.headers["www-authenticate"] == "Bearer")
            let wrong = try await request(
                port, "POST", "/api/models/tiny/promote", headers: ["Authorization": "Bearer \(Self.token.dropLast())x"]
            )
            #expect(wrong.status == 401 && wrong.msg == "wrong token")
            #expect(
                try await request(port, "GET", "/api/status", headers: ["Authorization": "Basic \(Self.token)"]).status
                    == 401)
            // The right token reads.
            let ok = try await request(port, "GET", "/api/models", headers: auth)
            #expect(ok.status == 200)
            #expect(try ok.json()["models"] == .array([try JSONValue(encoding: try s.tiers.listModels()[0])]))

            // Cross-origin POSTs, even with the token: refused before anything runs.
            let evil = try await request(
                port, "POST", "/api/models/tiny/demote",
                headers: auth.merging(["Origin": "http://evil.example"]) { a, _ in a })
            #expect(evil.status == 403 && evil.msg.contains("cross-origin"))
            let site = try await request(
                port, "POST", "/api/models/tiny/demote",
                headers: auth.merging(["Sec-Fetch-Site": "cross-site"]) { a, _ in a })
            #expect(site.status == 403)
            // A Host that is not this server (DNS rebinding): 421.
            #expect(
                try await request(port, "GET", "/api/status", headers: auth, host: "evil.example:\(port)").status == 421
            )
            // Only GET, HEAD, POST.
            #expect(try await request(port, "DELETE", "/api/tiers", headers: auth).status == 405)
            #expect(try await request(port, "PUT", "/api/models/tiny/promote", headers: auth).status == 405)

            // Paths instead of model names.
            for name in ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fshadow", "..", "a%00b", "tiny.gguf%2F..%2F..%2Fx"] {
                let reply = try await request(port, "POST", "/api/models/\(name)/promote", headers: auth)
                #expect(reply.status == 400, "\(name): \(reply.status) \(reply.msg)")
            }
            // A name that is not a model cachectl manages (a file beside the cold store).
            _ = try AtomicFile.write(Array("x".utf8), to: s.root + "/secret.gguf")
            let unknown = try await request(port, "POST", "/api/models/secret.gguf/warm", headers: auth)
            #expect(unknown.status == 404 && unknown.msg.contains("no model"))
            #expect(try await request(port, "POST", "/api/tiers/..%2Fx/destroy", headers: auth).status == 400)
            #expect(try await request(port, "POST", "/api/tiers/nosuch/destroy", headers: auth).status == 404)
            // The API has no field that takes a path: a tier is created at its default place only.
            let pathTier = try await request(
                port, "POST", "/api/tiers", headers: auth.merging(["Content-Type": "application/json"]) { a, _ in a },
                body: #"{"name":"x","type":"nvmeof","size":"1G"}"#)
            #expect(pathTier.status == 400)
            // Nothing ran.
            #expect(try await request(port, "GET", "/api/jobs", headers: auth).json()["jobs"] == .array([]))
        }
    }

    @Test func loopbackWithoutTokenAcceptsSameOriginPosts() async throws {
        let s = try ServeScratch()
        try s.addModel("tiny.gguf", bytes: 4096)
        try await withServer(ServeOptions(environment: s.environment, sampleInterval: 1)) { port in
            #expect(try await request(port, "GET", "/api/status").status == 200)
            #expect(try await request(port, "GET", "/", host: "localhost:\(port)").status == 200)
            // HEAD: a GET's status and headers, no body.
            let head = try await request(port, "HEAD", "/")
            #expect(
                head.status == 200 && head.headers["content-type"]?.hasPrefix("text/html") == true && head.body.isEmpty)
            #expect(try await request(port, "HEAD", "/api/status").status == 200)
            // A same-origin POST (what the page sends) starts a job; it fails as there is no tier.
            let same = try await request(
                port, "POST", "/api/models/tiny/promote",
                headers: ["Origin": "http://127.0.0.1:\(port)", "Accept": "application/json"])
            #expect(same.status == 202)
            let id = try #require(try same.json()["job"]?["id"]?.string)
            #expect(same.headers["location"] == "/api/jobs/\(id)")
            let job = try await waitForJob(port, id)
            #expect(job["state"]?.string == "failed" && job["msg"]?.string?.contains("no tier is mounted") == true)
            // A form post from the page without JavaScript goes back to the page.
            let form = try await request(
                port, "POST", "/api/models/tiny/warm",
                headers: ["Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"], body: "warm=")
            #expect(form.status == 303 && form.headers["location"]?.hasPrefix("/?job=") == true)
            let other = try await request(
                port, "POST", "/api/models/tiny/demote", headers: ["Origin": "http://localhost.evil:\(port)"])
            #expect(other.status == 403)
        }
    }
}
