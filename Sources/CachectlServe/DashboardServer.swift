import CachectlFSCache
import CachectlMount
import CachectlPlan
import CachectlStatus
import CachectlSystem
import CachectlTiers
import CachectlWarm
import FoundationEssentials
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `cachectl serve`: the JSON API and the page, over the same library calls the
/// CLI makes (`MachineStatus.read` is `status --json`, `RAMTiers.promote` is
/// `cachectl promote`, `Prewarmer` is `cachectl warm`). Reads run on threads of
/// their own, long changes as jobs (``JobBoard``).
public struct DashboardServer: Sendable {
    /// `cachectl status` of the machine the environment describes.
    static func status(_ e: PlanEnvironment) -> MachineStatus {
        MachineStatus.read(
            roots: e.roots, cachefilesdConfigPath: e.cachefilesdConfigPath, tierState: e.tierState,
            warmState: e.warmState)
    }

    public let options: ServeOptions
    let token: String?
    public let jobs: JobBoard
    public let sampler: TrafficSampler
    let logger: Logger

    /// Validates the options (a usage error names the bad field) and reads the token.
    public init(options: ServeOptions, logger: Logger = Logger(label: "cachectl.serve")) throws(CachectlError) {
        self.token = try options.validate()
        self.options = options
        self.jobs = JobBoard(maxRunning: options.maxRunningJobs)
        self.sampler = TrafficSampler(interval: options.sampleInterval, proc: options.environment.roots.proc)
        self.logger = logger
    }

    var environment: PlanEnvironment { options.environment }
    var tiers: RAMTiers { RAMTiers(stateFile: environment.tierState, roots: environment.roots) }

    /// Builds the application; `onRunning` gets the bound port (useful with port 0).
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = makeRouter()
        var logger = self.logger
        logger.logLevel = max(logger.logLevel, .notice)
        return Application(
            router: router,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Serves until SIGTERM or SIGINT.
    public func run() async throws {
        sampler.start()
        defer { sampler.stop() }
        let logger = self.logger
        let options = self.options
        let app = application { port in
            let host = options.host.contains(":") ? "[\(options.host)]" : options.host
            let auth = options.tokenFile != nil ? "bearer token required" : "loopback, no token"
            logger.notice("cachectl serve: listening on http://\(host):\(port)/ (\(auth))")
        }
        try await app.runService()
    }

    // MARK: - routes

    /// The guard and every route (openapi.json describes each; a test compares them).
    func makeRouter() -> Router<ServeContext> {
        // HEAD answers every GET route with its headers (curl -I, link checkers).
        let router = Router(context: ServeContext.self, options: .autoGenerateHeadEndpoints)
        router.middlewares.add(RequestGuard(token: token, options: options, logger: logger))
        addRoutes(to: router)
        return router
    }

    func addRoutes(to router: Router<ServeContext>) {
        let environment = self.environment
        let tiers = self.tiers
        let jobs = self.jobs
        let sampler = self.sampler

        router.get("/") { request, _ in
            let selected = request.uri.queryParameters["job"].map(String.init)
            let (status, history, list) = try await onOwnThread("cachectl-page") {
                (Self.status(environment), sampler.history(), jobs.list())
            }
            return Page.response(status: status, history: history, jobs: list, selectedJob: selected)
        }
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.openapi_json)))
        }
        router.get("/api/status") { _, _ in
            try await Self.json { Self.status(environment) }
        }
        router.get("/api/cache") { _, _ in
            try await Self.json {
                CacheStatus.read(configPath: environment.cachefilesdConfigPath, roots: environment.roots)
            }
        }
        router.get("/api/shares") { _, _ in
            try await Self.json { () throws -> SharesData in
                SharesData(
                    shares: try NetworkMounts.list(roots: environment.roots)
                        + NetworkMounts.unmountedFstabShares(roots: environment.roots))
            }
        }
        router.get("/api/tiers") { _, _ in
            try await Self.json { TiersData(tiers: try tiers.listTiers()) }
        }
        router.get("/api/models") { _, _ in
            try await Self.json { ModelsData(models: try Self.listModels(tiers)) }
        }
        router.get("/api/history") { _, _ in
            try Self.jsonResponse(sampler.history())
        }
        router.get("/api/jobs") { _, _ in
            try Self.jsonResponse(JobsData(jobs: jobs.list()))
        }
        router.get("/api/jobs/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let job = jobs.job(id) else { throw APIError(.notFound, "no job \(InputBounds.show(id))") }
            return try Self.jsonResponse(job)
        }
        router.get("/api/jobs/:id/events") { _, context in
            let id = try context.parameters.require("id")
            guard let stream = jobs.subscribe(id) else { throw APIError(.notFound, "no job \(InputBounds.show(id))") }
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    for await job in stream {
                        let data = String(decoding: try JSONOutput.encode(job), as: UTF8.self)
                        let event = job.state == .running ? "progress" : "done"
                        try await writer.write(ByteBuffer(string: "event: \(event)\ndata: \(data)\n\n"))
                    }
                    try await writer.finish(nil)
                })
        }

        // Models: promote, demote, warm.
        router.post("/api/models/:name/promote") { request, context in
            let name = try await Self.managedModel(context, tiers)
            let form = try await Form(request, context)
            let tier = try form.tierName("tier")
            let pin = try form.bool("pin")
            let strategy =
                try form.string("strategy").map { text in
                    guard let s = PlacementStrategy(rawValue: text) else {
                        throw APIError(.badRequest, "strategy must be fastest-fit, fill-first or round-robin")
                    }
                    return s
                } ?? .fastestFit
            return try Self.started(request, jobs, kind: "promote", target: name) { observe in
                let change = try tiers.promote(name, tier: tier, strategy: strategy, pin: pin, observer: observe)
                return (
                    "\(change.model): \(change.action)" + (change.tier.map { " (\($0))" } ?? ""),
                    try JSONValue(encoding: change)
                )
            }
        }
        router.post("/api/models/:name/demote") { request, context in
            let name = try await Self.managedModel(context, tiers)
            let unpin = try await Form(request, context).bool("unpin")
            return try Self.started(request, jobs, kind: "demote", target: name) { _ in
                let change = try tiers.demote(name, unpin: unpin)
                return (
                    "\(change.model): \(change.action)" + (change.from.map { " (from \($0))" } ?? ""),
                    try JSONValue(encoding: change)
                )
            }
        }
        router.post("/api/models/:name/warm") { request, context in
            let name = try await Self.managedModel(context, tiers)
            return try Self.started(request, jobs, kind: "warm", target: name) { observe in
                let files = FileSelection(paths: try tiers.links(of: name), expandShards: false)
                let bar = ProgressBar(total: files.totalSize, label: "warm", enabled: false, observer: observe)
                let report = Prewarmer().warm(files.files, progress: bar)
                if report.failedFiles > 0 {
                    throw CachectlError.failed("warm \(name)", hint: "\(report.failedFiles) file(s) could not be read")
                }
                return ("\(name): warmed \(ByteSize.format(report.bytesRead))", try JSONValue(encoding: report))
            }
        }

        // Tiers: create (tmpfs or zram at the default path), resize, destroy.
        router.post("/api/tiers") { request, context in
            let form = try await Form(request, context)
            guard let name = try form.tierName("name") else { throw APIError(.badRequest, "name is required") }
            guard let typeText = try form.string("type"), let type = TierType(rawValue: typeText), !type.takesDevice
            else {
                let types = TierType.allCases.filter { !$0.takesDevice }.map(\.rawValue).joined(separator: " or ")
                throw APIError(.badRequest, "type must be \(types) (tiers on a device or an export: use the CLI)")
            }
            guard let sizeText = try form.string("size"), let size = ByteSize(parsing: sizeText) else {
                throw APIError(.badRequest, "size must be a size such as 16G or 512M")
            }
            let rank = try form.string("rank").map { text in
                guard let r = Int(text), (0...1000).contains(r) else {
                    throw APIError(.badRequest, "rank must be 0 to 1000")
                }
                return r
            }
            let algorithm = try form.string("algorithm")
            let filesystem = try form.string("fs").map { text in
                guard let fs = TierFilesystem(rawValue: text) else {
                    throw APIError(.badRequest, "fs must be ext4 or xfs")
                }
                return fs
            }
            // No path: the API creates tiers only where cachectl puts them (/run/cachectl/tiers/NAME).
            let spec = TierSpec(
                name: name, type: type, size: size, algorithm: algorithm, filesystem: filesystem, rank: rank)
            do { try spec.validate() } catch { throw APIError(.badRequest, "\(error)") }
            return try Self.started(request, jobs, kind: "tier-create", target: name) { _ in
                let change = try tiers.createTier(spec)
                return ("tier \(name): \(change.action)", try JSONValue(encoding: change))
            }
        }
        router.post("/api/tiers/:name/resize") { request, context in
            let name = try await Self.managedTier(context, tiers)
            let form = try await Form(request, context)
            guard let sizeText = try form.string("size"), let size = ByteSize(parsing: sizeText) else {
                throw APIError(.badRequest, "size must be a size such as 16G or 512M")
            }
            return try Self.started(request, jobs, kind: "tier-resize", target: name) { _ in
                let change = try tiers.resizeTier(name, size: size)
                return ("tier \(name): \(change.action)", try JSONValue(encoding: change))
            }
        }
        router.post("/api/tiers/:name/destroy") { request, context in
            let name = try await Self.managedTier(context, tiers)
            let demote = try await Form(request, context).bool("demote")
            return try Self.started(request, jobs, kind: "tier-destroy", target: name) { _ in
                let change = try tiers.destroyTier(name, demote: demote)
                return ("tier \(name): \(change.action)", try JSONValue(encoding: change))
            }
        }
    }

    struct SharesData: Encodable, Sendable { var shares: [NetworkMount] }
    struct TiersData: Encodable, Sendable { var tiers: [TierStatus] }
    struct ModelsData: Encodable, Sendable { var models: [ModelStatus] }
    struct JobsData: Encodable, Sendable { var jobs: [JobBoard.Job] }
    struct JobStarted: Encodable, Sendable { var job: JobBoard.Job }

    /// Models are listed only once a models directory is configured (as `status` does).
    static func listModels(_ tiers: RAMTiers) throws -> [ModelStatus] {
        guard (try tiers.stateFile.load()).modelsDir != nil else { return [] }
        return try tiers.listModels()
    }

    /// The `{name}` of a model route: a plain name (no `/`, no NUL, not `.` or
    /// `..`, at most 255 bytes) that `listModels` shows. Anything else is refused
    /// before any work starts, so no request can name a path of its own.
    static func managedModel(_ context: ServeContext, _ tiers: RAMTiers) async throws -> String {
        // The router leaves percent-escapes in; the page escapes names it puts in URLs.
        let raw = try context.parameters.require("name")
        guard let name = PercentEncoding.decode(raw) else {
            throw APIError(.badRequest, "model name: bad percent-encoding")
        }
        if let problem = ModelName.problem(name) { throw APIError(.badRequest, "model \(problem)") }
        let known = try await onOwnThread("cachectl-models") { try listModels(tiers).map(\.name) }
        guard known.contains(name) else {
            throw APIError(.notFound, "no model \(InputBounds.show(name)) in the cold store; see GET /api/models")
        }
        return name
    }

    /// The `{name}` of a tier route: a valid tier name that is in the state file.
    static func managedTier(_ context: ServeContext, _ tiers: RAMTiers) async throws -> String {
        let name = try context.parameters.require("name")
        do { try TierSpec.validateName(name) } catch { throw APIError(.badRequest, "\(error)") }
        let known = try await onOwnThread("cachectl-tiers") { try tiers.stateFile.load().tiers.map(\.spec.name) }
        guard known.contains(name) else { throw APIError(.notFound, "no tier \(name); see GET /api/tiers") }
        return name
    }

    /// 202 with the job (and its URL in Location); a browser's form post (no
    /// JavaScript) is sent back to the page instead, which shows the job.
    static func started(
        _ request: Request, _ jobs: JobBoard, kind: String, target: String,
        _ work:
            @escaping @Sendable (_ observe: @escaping ProgressBar.Observer) throws -> (msg: String, result: JSONValue)
    ) throws -> Response {
        let job: JobBoard.Job
        do { job = try jobs.start(kind: kind, target: target, work) } catch {
            throw APIError(.tooManyRequests, "\(error.running) job(s) running; wait for one to end")
        }
        if Self.wantsPage(request) {
            return Response(status: .seeOther, headers: [.location: "/?job=\(job.id)"])
        }
        var response = try jsonResponse(JobStarted(job: job), status: .accepted)
        response.headers[.location] = "/api/jobs/\(job.id)"
        return response
    }

    /// A form posted by the page without JavaScript: it asks for HTML, not JSON.
    static func wantsPage(_ request: Request) -> Bool {
        let accept = request.headers[.accept] ?? ""
        return accept.contains("text/html") && !accept.contains("application/json")
    }

    static func json<T: Encodable & Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> Response {
        let value = try await onOwnThread("cachectl-read") { try body() }
        return try jsonResponse(value)
    }

    static func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: try JSONOutput.encode(value))))
    }
}

/// A refusal with a status and a message; the body is `{"failed":true,"msg":...}`.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: JSONOutput.error(message))))
    }
}

/// What a model name in a URL may be.
enum ModelName {
    static func problem(_ name: String) -> String? {
        if name.isEmpty { return "name is empty" }
        if name.utf8.count > 255 { return "name is longer than 255 bytes" }
        if name == "." || name == ".." { return "name may not be . or .." }
        if let bad = name.unicodeScalars.first(where: { $0 == "/" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7f }
        ) {
            return "name may not contain \(bad == "/" ? "/" : bad.escaped(asASCII: true)): \(InputBounds.show(name))"
        }
        return nil
    }
}

/// The fields of a POST: a JSON object or an HTML form (urlencoded); an empty body is no fields.
struct Form: Sendable {
    var fields: [String: String] = [:]

    init(_ request: Request, _ context: ServeContext) async throws {
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard body.readableBytes > 0 else { return }
        let contentType = request.headers[.contentType] ?? ""
        if contentType.hasPrefix("application/x-www-form-urlencoded") {
            for pair in String(buffer: body).split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = Self.decode(kv[0]) else { throw APIError(.badRequest, "form: bad encoding") }
                fields[key] = kv.count > 1 ? Self.decode(kv[1]) ?? "" : ""
            }
        } else if contentType.hasPrefix("application/json") {
            guard
                case .object(let object) = try? JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
            else {
                throw APIError(.badRequest, "body: a JSON object expected")
            }
            for (key, value) in object {
                switch value {
                case .string(let s): fields[key] = s
                case .bool(let b): fields[key] = b ? "true" : "false"
                case .int(let i): fields[key] = String(i)
                case .uint(let u): fields[key] = String(u)
                case .null: break
                default: throw APIError(.badRequest, "\(key): a string, number or boolean expected")
                }
            }
        } else {
            throw APIError(.unsupportedMediaType, "body: application/json or application/x-www-form-urlencoded")
        }
    }

    static func decode(_ text: Substring) -> String? {
        PercentEncoding.decode(text.replacing("+", with: " "))
    }

    func string(_ key: String) throws -> String? {
        guard let value = fields[key], !value.isEmpty else { return nil }
        guard value.utf8.count <= 256 else { throw APIError(.badRequest, "\(key) is longer than 256 bytes") }
        return value
    }

    func bool(_ key: String) throws -> Bool {
        switch fields[key] {
        case nil, "", "false", "0", "off": return false
        case "true", "1", "on": return true
        default: throw APIError(.badRequest, "\(key) must be true or false")
        }
    }

    func tierName(_ key: String) throws -> String? {
        guard let name = try string(key) else { return nil }
        do { try TierSpec.validateName(name) } catch { throw APIError(.badRequest, "\(key): \("\(error)")") }
        return name
    }
}
