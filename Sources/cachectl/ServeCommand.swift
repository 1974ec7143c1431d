import ArgumentParser
import CachectlPlan
import CachectlServe
import CachectlSystem
import CachectlTiers
import Dispatch
import Synchronization

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "A local web page and JSON API: cache, shares, tiers, models; promote, demote, warm.",
        discussion: """
            Serves http://127.0.0.1:5050/ until SIGTERM or SIGINT: the page (no JavaScript \
            needed), the JSON API under /api (described by /openapi.json) and job progress as \
            Server-Sent Events. Every change is a POST that runs as a job over the same library \
            calls as the CLI, and is logged on stderr (the journal under systemd).

            Any address other than loopback requires --token-file: a file of this user, mode \
            0600, holding one token of 16+ characters; every request must then send \
            `Authorization: Bearer TOKEN`. POSTs from other sites (Origin, Sec-Fetch-Site) and \
            Host names other than the server's are refused. Models are named, never paths.

            Examples:
              cachectl serve
              curl -s http://127.0.0.1:5050/api/status | jq .tiers
              curl -s -X POST http://127.0.0.1:5050/api/models/llama3:8b/promote
              openssl rand -hex 32 > /etc/cachectl/serve.token; chmod 600 /etc/cachectl/serve.token
              cachectl serve --host 10.0.0.5 --token-file /etc/cachectl/serve.token
            """)

    @Option(
        help: ArgumentHelp(
            "IP address to listen on (other than 127.0.0.1 or ::1 needs --token-file).", valueName: "address"))
    var host = "127.0.0.1"
    @Option(help: "TCP port.") var port = 5050
    @Option(help: ArgumentHelp("File holding the bearer token (mode 0600).", valueName: "file")) var tokenFile: String?
    @Option(
        help: ArgumentHelp("Seconds between samples of the cache counters (the page's chart).", valueName: "seconds"))
    var sampleInterval = 10.0
    @OptionGroup var state: MachineStateOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        output.bootstrap()
        let options = ServeOptions(
            host: host, port: port, tokenFile: tokenFile.map { Path.absolute($0) }, environment: state.environment,
            sampleInterval: sampleInterval)
        let server: DashboardServer
        server = try DashboardServer(options: options)
        // The server is async; this command's thread waits for it (it is not one of the cooperative pool's).
        let outcome = ServeOutcome()
        Task.detached {
            do { try await server.run() } catch { outcome.set(error) }
            outcome.done.signal()
        }
        outcome.done.wait()
        if let error = outcome.error { throw error }
    }
}

private final class ServeOutcome: Sendable {
    let done = DispatchSemaphore(value: 0)
    private let stored = Mutex<(any Error)?>(nil)
    func set(_ error: any Error) { stored.withLock { $0 = error } }
    var error: (any Error)? { stored.withLock { $0 } }
}
