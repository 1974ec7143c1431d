import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's, plus the peer's address (loopback checks, logs).
public struct ServeContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Every request passes here before a route sees it:
///
/// - Host must name this server (a loopback server answers only to 127.0.0.1,
///   localhost and [::1]), which defeats DNS rebinding: a page from another site
///   that resolves its own name to 127.0.0.1 sends its own name as Host.
/// - With a token, every request needs `Authorization: Bearer TOKEN` (compared in
///   constant time). Without one the server listens on loopback only
///   (``ServeOptions/validate()``) and the peer must be loopback.
/// - Only GET, HEAD and POST; POST is what changes things, and a POST whose
///   Origin (or Sec-Fetch-Site) says it comes from another site is refused, so a
///   page elsewhere cannot submit a form here.
/// - Each POST is logged (peer, path, status); the token never is.
struct RequestGuard: RouterMiddleware {
    typealias Context = ServeContext
    let token: String?
    let loopbackOnly: Bool
    /// Extra Host names accepted besides the loopback ones (the listen address).
    let hostNames: Set<String>
    /// Listening on every address (0.0.0.0, ::): any Host name is accepted, and
    /// the token (required there) is what keeps other sites out.
    let anyHost: Bool
    let logger: Logger

    init(token: String?, options: ServeOptions, logger: Logger) {
        self.token = token
        self.loopbackOnly = options.isLoopback
        var names: Set<String> = ["127.0.0.1", "localhost", "[::1]"]
        if !options.isLoopback {
            names.insert(options.host.contains(":" as Character) ? "[\(options.host)]" : options.host)
        }
        self.hostNames = names
        self.anyHost = options.host == "0.0.0.0" || options.host == "::"
        self.logger = logger
    }

    func handle(_ request: Request, context: ServeContext, next: (Request, ServeContext) async throws -> Response)
        async throws -> Response
    {
        let method = request.method
        let mutating = method == .post
        do {
            try check(request, context: context)
        } catch {
            let refusal = error
            if mutating || refusal.status != .notFound {
                logger.warning("refused \(method) \(request.uri.path) from \(peer(context)): \(refusal.message)")
            }
            return refusal.response
        }
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            if mutating { logger.notice("\(method) \(request.uri.path) from \(peer(context)): failed: \(error)") }
            throw error
        }
        if mutating {
            logger.notice("\(method) \(request.uri.path) from \(peer(context)): \(response.status.code)")
        }
        return response
    }

    func peer(_ context: ServeContext) -> String {
        context.remoteAddress?.ipAddress ?? context.remoteAddress?.description ?? "?"
    }

    struct Refusal: Error {
        var status: HTTPResponse.Status
        var message: String
        var headers: HTTPFields = [:]
        var response: Response {
            var headers = headers
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "no-store"
            return Response(
                status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONOutput.error(message)))
            )
        }
    }

    func check(_ request: Request, context: ServeContext) throws(Refusal) {
        // 1. Host names this server.
        guard let authority = request.head.authority, let host = Self.hostName(authority),
            anyHost || hostNames.contains(host.lowercased())
        else {
            throw Refusal(status: .misdirectedRequest, message: "Host does not name this server")
        }
        // 2. Who may ask.
        if let token {
            let given = request.headers[.authorization].flatMap { value -> Substring? in
                let parts = value.split(separator: " ", maxSplits: 1)
                return parts.count == 2 && parts[0].lowercased() == "bearer" ? parts[1] : nil
            }
            guard let given else {
                throw Refusal(
                    status: .unauthorized, message: "a bearer token is required (Authorization: Bearer TOKEN)",
                    headers: [.wwwAuthenticate: "Bearer"])
            }
            guard Self.constantTimeEqual(Array(given.utf8), Array(token.utf8)) else {
                throw Refusal(
                    status: .unauthorized, message: "wrong token",
                    headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
            }
        } else {
            guard let remote = context.remoteAddress, Self.isLoopback(remote) else {
                throw Refusal(status: .forbidden, message: "only loopback peers may connect without a token")
            }
        }
        // 3. Methods: GET and HEAD read, POST changes.
        switch request.method {
        case .get, .head:
            return
        case .post:
            break
        default:
            throw Refusal(
                status: .methodNotAllowed, message: "only GET, HEAD and POST", headers: [.allow: "GET, HEAD, POST"])
        }
        // 4. A POST from another site's page is refused.
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin", site != "none" {
            throw Refusal(
                status: .forbidden, message: "cross-origin request refused (Sec-Fetch-Site: \(site.prefix(20)))")
        }
        if let origin = request.headers[.origin] {
            let same = ["http://" + authority.lowercased()]
            guard same.contains(origin.lowercased()) else {
                throw Refusal(status: .forbidden, message: "cross-origin request refused (Origin does not match Host)")
            }
        }
    }

    /// The name part of a Host header: `localhost:5050` → `localhost`, `[::1]:5050` → `[::1]`.
    static func hostName(_ authority: String) -> String? {
        if authority.hasPrefix("[") {
            guard let end = authority.firstIndex(of: "]") else { return nil }
            return String(authority[...end])
        }
        return authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        guard let ip = address.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
