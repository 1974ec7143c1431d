import CachectlSystem
import CachectlTestSupport
import CachectlTiers
import Foundation
import Glibc
import Testing

@testable import CachectlServe

/// The page in headless Chromium (Debian's chromium; `integration/deps test`),
/// driven over the DevTools protocol on a pipe: load it, press promote, see the
/// model move to hot in a real tmpfs tier, demote it back, and once more with
/// JavaScript off. Screenshots go to .build/test-output/serve-browser/ (or
/// $CACHECTL_TEST_OUTPUT). Root runs Chromium with --no-sandbox.
@Suite(.serialized, .rootInPrivateMountNamespace, .enabled(if: Browser.path != nil, "needs chromium"))
struct BrowserTests {
    static var outputDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["CACHECTL_TEST_OUTPUT"] { return dir + "/serve-browser" }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.path + "/.build/test-output/serve-browser"
    }

    @Test func promoteAndDemoteFromThePage() async throws {
        let s = try ServeScratch()
        try s.addModel("llama-tiny.gguf", bytes: 48 << 20)
        try s.addModel("qwen-small.gguf", bytes: 8 << 20)
        try s.tmpfsTier("fast", size: 96 << 20)
        let out = Self.outputDirectory
        try Path.makeDirectory(out)
        try await withServer(ServeOptions(environment: s.environment, sampleInterval: 0.5)) { port in
            try await onOwnThread("browser") {
                let browser = try Browser(profile: s.root + "/chromium")
                defer { browser.close() }
                let url = "http://127.0.0.1:\(port)/"
                let row = #"tr[data-model="llama-tiny"]"#
                let location = "document.querySelector('\(row) td.location').textContent.trim()"
                try browser.navigate(url)
                try browser.waitFor(location, equals: "cold")
                try browser.screenshot(out + "/1-cold.png")

                try browser.click("\(row) button[name=promote]")
                // The job's line under Jobs (it may already be over and the page reloaded: then this shows the result).
                try? browser.waitFor(
                    "document.getElementById('live').textContent.length > 0 || \(location) != 'cold'", equals: "true",
                    seconds: 5)
                try browser.screenshot(out + "/2-promoting.png")
                try browser.waitFor(location, equals: "hot: fast", seconds: 60)
                try browser.screenshot(out + "/3-hot.png")
                #expect(
                    try FileManager.default.destinationOfSymbolicLink(atPath: s.models + "/llama-tiny.gguf") == s.root
                        + "/tiers/fast/llama-tiny.gguf")

                try browser.click("\(row) button[name=demote]")
                try browser.waitFor(location, equals: "cold", seconds: 60)
                try browser.screenshot(out + "/4-demoted.png")
                #expect(
                    try FileManager.default.destinationOfSymbolicLink(atPath: s.models + "/llama-tiny.gguf") == s.cold
                        + "/llama-tiny.gguf")

                // Without JavaScript: the form posts, the page shows the job and refreshes until it ends.
                try browser.call("Emulation.setScriptExecutionDisabled", ["value": true])
                try browser.navigate(url)
                try browser.waitFor(location, equals: "cold")
                try browser.click(#"tr[data-model="qwen-small"] button[name=promote]"#)
                // The page after the post shows the job; reloading it (the <noscript> refresh does that in a
                // browser with JavaScript off; DevTools' script switch does not enable <noscript>) shows the result.
                let qwen = "document.querySelector('tr[data-model=\"qwen-small\"] td.location').textContent.trim()"
                let deadline = Monotonic.now() + 60
                while (try? browser.evaluate(qwen)) != "hot: fast", Monotonic.now() < deadline {
                    usleep(500_000)
                    try browser.navigate(try browser.evaluate("location.href"))
                }
                try browser.waitFor(qwen, equals: "hot: fast", seconds: 1)
                try browser.screenshot(out + "/5-no-javascript-hot.png")
                #expect(try browser.evaluate("location.search").hasPrefix("?job="))
            }
        }
        for name in ["1-cold", "2-promoting", "3-hot", "4-demoted", "5-no-javascript-hot"] {
            let bytes = try AtomicFile.readBytes(out + "/\(name).png")
            #expect(bytes.count > 1000 && bytes.prefix(4) == [0x89, 0x50, 0x4e, 0x47], "\(name).png")
        }
    }
}

/// Headless Chromium on --remote-debugging-pipe (fd 3 in, fd 4 out; messages end in NUL).
final class Browser {
    static var path: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let pid: pid_t
    let toBrowser: Int32
    let fromBrowser: Int32
    var buffer: [UInt8] = []
    var nextID = 1
    var session: String?

    init(profile: String) throws {
        guard let path = Self.path else { throw CachectlError.failed("no chromium") }
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else { throw CachectlError("pipe", errno: errno) }
        // Move the child's ends above 10 so dup2 onto 3 and 4 cannot clobber them.
        let childIn = fcntl(input[0], F_DUPFD, 10)
        let childOut = fcntl(output[1], F_DUPFD, 10)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, childIn, 3)
        posix_spawn_file_actions_adddup2(&actions, childOut, 4)
        let devnull = open("/dev/null", O_WRONLY)
        posix_spawn_file_actions_adddup2(&actions, devnull, 2)
        let args = [
            path, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--remote-debugging-pipe", "--user-data-dir=\(profile)", "--window-size=1280,1100", "about:blank",
        ]
        var argv = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, nil, &argv, environ)
        Glibc.close(devnull)
        for fd in [input[0], output[1], childIn, childOut] { Glibc.close(fd) }
        guard rc == 0 else { throw CachectlError("posix_spawn chromium", errno: rc) }
        pid = child
        toBrowser = input[1]
        fromBrowser = output[0]
        let targets = try call("Target.getTargets", [:], session: false)
        let page = (targets["targetInfos"] as? [[String: Any]])?.first { $0["type"] as? String == "page" }
        let targetId: String
        if let id = page?["targetId"] as? String {
            targetId = id
        } else {
            targetId = try call("Target.createTarget", ["url": "about:blank"], session: false)["targetId"] as! String
        }
        session =
            try call("Target.attachToTarget", ["targetId": targetId, "flatten": true], session: false)["sessionId"]
            as? String
        try call("Page.enable", [:])
    }

    func close() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        Glibc.close(toBrowser)
        Glibc.close(fromBrowser)
    }

    @discardableResult
    func call(_ method: String, _ params: [String: Any], session useSession: Bool = true) throws -> [String: Any] {
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if useSession, let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(toBrowser, $0.baseAddress, $0.count) }
            guard n > 0 else { throw CachectlError("write to chromium", errno: errno) }
            sent += n
        }
        let deadline = Monotonic.now() + 30
        while Monotonic.now() < deadline {
            if let end = buffer.firstIndex(of: 0) {
                let text = Array(buffer[..<end])
                buffer.removeSubrange(...end)
                guard let reply = try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any],
                    reply["id"] as? Int == id
                else { continue }
                if let error = reply["error"] as? [String: Any] {
                    throw CachectlError.failed("\(method): \(error["message"] ?? error)")
                }
                return reply["result"] as? [String: Any] ?? [:]
            }
            var pfd = pollfd(fd: fromBrowser, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 1000) >= 0 else { throw CachectlError("poll", errno: errno) }
            if pfd.revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 1 << 20)
                let n = read(fromBrowser, &chunk, chunk.count)
                guard n > 0 else { throw CachectlError.failed("chromium closed its pipe") }
                buffer += chunk[0..<n]
            }
        }
        throw CachectlError.failed("\(method): no answer from chromium in 30 s")
    }

    func evaluate(_ expression: String) throws -> String {
        let result = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        let value = (result["result"] as? [String: Any])?["value"]
        return value.map { "\($0)" } ?? ""
    }

    func navigate(_ url: String) throws {
        try call("Page.navigate", ["url": url])
        try waitFor("document.readyState", equals: "complete")
    }

    /// Polls `expression` (errors while the page reloads count as not yet).
    func waitFor(_ expression: String, equals wanted: String, seconds: Double = 15) throws {
        let deadline = Monotonic.now() + seconds
        var last = ""
        while Monotonic.now() < deadline {
            last =
                (try? evaluate("(() => { try { return \(expression) } catch (e) { return 'error: ' + e } })()")) ?? last
            if last == wanted { return }
            usleep(100_000)
        }
        let page = (try? evaluate("location.href + ' ' + document.body.innerText.slice(0, 400)")) ?? "?"
        throw CachectlError.failed(
            "waited \(Int(seconds)) s for \(expression) to be '\(wanted)'; it is '\(last)'; page: \(page)")
    }

    /// A real mouse press and release at the middle of the element.
    func click(_ selector: String) throws {
        let escaped = selector.replacingOccurrences(of: "'", with: "\\'")
        let rect = try evaluate(
            "(() => { const e = document.querySelector('\(escaped)'); if (!e) return ''; e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); return (r.x + r.width / 2) + ',' + (r.y + r.height / 2); })()"
        )
        let xy = rect.split(separator: ",").compactMap { Double($0) }
        guard xy.count == 2 else { throw CachectlError.failed("no element \(selector) on the page") }
        for type in ["mousePressed", "mouseReleased"] {
            try call(
                "Input.dispatchMouseEvent", ["type": type, "x": xy[0], "y": xy[1], "button": "left", "clickCount": 1])
        }
    }

    func screenshot(_ path: String) throws {
        let result = try call("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true])
        guard let base64 = result["data"] as? String, let data = Data(base64Encoded: base64) else {
            throw CachectlError.failed("no screenshot data")
        }
        _ = try AtomicFile.write([UInt8](data), to: path)
    }
}
