import CachectlPlan
import CachectlSystem
import CachectlTestSupport
import CachectlTiers
import CachectlWarm
import Foundation
import Glibc
import Hummingbird

@testable import CachectlServe

/// A real server on an ephemeral loopback port for the length of `body`.
func withServer(_ options: ServeOptions, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
    var options = options
    options.port = 0
    let server = try DashboardServer(options: options)
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = server.application { port in continuation.yield(port) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CachectlError.failed("server did not start") }
        do {
            try await body(port)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}

/// What came back over the wire.
struct HTTPReply: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(body)) }
    var msg: String { (try? json())?["msg"]?.string ?? text }
}

/// A plain HTTP/1.1 client on a TCP socket (Connection: close), so a test can set
/// any header (Host, Origin) exactly; it runs on a thread of its own.
func request(
    _ port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: String = "",
    host: String? = nil
) async throws -> HTTPReply {
    try await onOwnThread("test-http") {
        try requestBlocking(port, method, path, headers: headers, body: body, host: host)
    }
}

func requestBlocking(
    _ port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: String = "",
    host: String? = nil, onChunk: ((String) -> Bool)? = nil
) throws -> HTTPReply {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CachectlError("socket", errno: errno) }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else { throw CachectlError("connect", errno: errno) }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\nConnection: close\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.utf8.count)\r\n" }
    let out = Array((head + "\r\n" + body).utf8)
    var sent = 0
    while sent < out.count {
        let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw CachectlError("send", errno: errno) }
        sent += n
    }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        data += buffer[0..<n]
        if let onChunk, onChunk(String(decoding: data, as: UTF8.self)) { break }
    }
    guard
        let split = data.indices.dropLast(3).first(where: {
            data[$0] == 13 && data[$0 + 1] == 10 && data[$0 + 2] == 13 && data[$0 + 3] == 10
        })
    else {
        throw CachectlError.failed("no HTTP response head in \(data.count) bytes")
    }
    let lines = String(decoding: data[..<split], as: UTF8.self).components(separatedBy: "\r\n")
    let status = Int(lines[0].split(separator: " ")[1]) ?? 0
    var fields: [String: String] = [:]
    for line in lines.dropFirst() {
        if let colon = line.firstIndex(of: ":") {
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
    var payload = Array(data[(split + 4)...])
    if fields["transfer-encoding"] == "chunked" { payload = dechunk(payload) }
    return HTTPReply(status: status, headers: fields, body: payload)
}

func dechunk(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        guard let lineEnd = bytes[i...].indices.dropLast().first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }),
            let size = Int(String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16)
        else { break }
        if size == 0 { break }
        let start = lineEnd + 2
        out += bytes[start..<min(bytes.count, start + size)]
        i = start + size + 2
    }
    return out
}

/// A temp tree: a cold store with one .gguf model, a models dir, state files.
final class ServeScratch: @unchecked Sendable {
    let root: String
    var cold: String { root + "/cold" }
    var models: String { root + "/models" }
    var tierState: String { root + "/state/tiers.json" }
    var tiers: RAMTiers { RAMTiers(stateFile: TierStateFile(path: tierState)) }
    var environment: PlanEnvironment {
        PlanEnvironment(
            cachefilesdConfigPath: root + "/cachefilesd.conf", manageCacheDaemon: false,
            tierState: TierStateFile(path: tierState), warmState: WarmStateFile(path: root + "/state/warm.json"))
    }

    init() throws {
        root = try makeTemporaryDirectory("serve-test")
        chmod(root, 0o755)
        try Path.makeDirectory(cold)
        try Path.makeDirectory(models)
    }

    /// A model of `bytes` pseudo-random bytes in the cold store, linked into the models dir.
    func addModel(_ name: String, bytes: Int) throws {
        var x: UInt64 = 0x9e37_79b9_7f4a_7c15
        var data = [UInt8](repeating: 0, count: bytes)
        for i in 0..<bytes {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            data[i] = UInt8(truncatingIfNeeded: x)
        }
        _ = try AtomicFile.write(data, to: cold + "/" + name)
        _ = try tiers.configureModels(modelsDir: models, coldStore: cold)
    }

    func tmpfsTier(_ name: String, size: UInt64 = 64 << 20) throws {
        _ = try tiers.createTier(
            TierSpec(name: name, type: .tmpfs, size: ByteSize(size), path: root + "/tiers/" + name))
    }

    func cleanup() {
        if let state = try? TierStateFile(path: tierState).load() {
            for record in state.tiers { umount2(record.spec.path, Int32(MNT_DETACH)) }
        }
        _ = try? ExternalCommand(["rm", "-rf", "--one-file-system", root]).run()
    }

    deinit { cleanup() }
}

/// Waits for a job to end (GET /api/jobs/{id}), at most `seconds`.
func waitForJob(_ port: Int, _ id: String, headers: [String: String] = [:], seconds: Double = 60) async throws
    -> JSONValue
{
    let deadline = Monotonic.now() + seconds
    while Monotonic.now() < deadline {
        let job = try await request(port, "GET", "/api/jobs/\(id)", headers: headers).json()
        if job["state"]?.string != "running" { return job }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw CachectlError.failed("job \(id) still running after \(seconds) s")
}
