import ArgumentParser
import CachectlSystem
import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// Flags every command shares: output format and verbosity.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON document on stdout (changed, failed, msg and the data); logs stay on stderr.")
    var json = false

    @Flag(name: .shortAndLong, help: "Log more on stderr (repeat for debug detail: -vv).")
    var verbose: Int

    @Flag(name: .shortAndLong, help: "Log only errors; no progress bar.")
    var quiet = false

    /// Progress bars are for people: not with --json or --quiet (and only on a tty).
    var showsProgress: Bool { !json && !quiet }

    /// Sets up logging to stderr at the chosen level. Call once, first thing in run().
    func bootstrap() {
        let level: Logger.Level = quiet ? .error : verbose >= 2 ? .trace : verbose == 1 ? .debug : .info
        CommandOutput.bootstrapLogging(level: level)
    }
}

/// The JSON document every command prints with --json: `changed`, `failed`, `msg`,
/// and the command's own fields beside them.
struct Envelope<Data: Encodable>: Encodable {
    var changed: Bool
    var failed: Bool
    var msg: String
    var data: Data

    private enum Keys: String, CodingKey { case changed, failed, msg }

    func encode(to encoder: Encoder) throws {
        try data.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(changed, forKey: .changed)
        try container.encode(failed, forKey: .failed)
        try container.encode(msg, forKey: .msg)
    }
}

struct NoData: Encodable {
    func encode(to encoder: Encoder) throws { _ = encoder.container(keyedBy: CodingKeys.self) }
    private enum CodingKeys: CodingKey {}
}

enum CommandOutput {
    private static let logBootstrapped = LockedFlag()

    static func bootstrapLogging(level: Logger.Level) {
        guard logBootstrapped.setOnce() else { return }
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Prints the command's result: the envelope as JSON, or the human text.
    /// Throws ``ReportedFailure`` after printing when `failed`, so `main` exits with
    /// the status of `code` (1, or 2 for a usage error).
    static func finish<D: Encodable>(
        _ options: OutputOptions, changed: Bool, failed: Bool, code: CachectlError.Code = .failed, msg: String, data: D,
        human: () -> String
    ) throws {
        if options.json {
            printJSON(Envelope(changed: changed, failed: failed, msg: msg, data: data))
        } else {
            let text = human()
            if !text.isEmpty { StandardStream.output.write(text + "\n") }
        }
        if failed { throw ReportedFailure(code: code) }
    }

    static func printJSON<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        do {
            let data = try encoder.encode(value)
            StandardStream.output.write(String(decoding: data, as: UTF8.self) + "\n")
        } catch {
            StandardStream.error.write("cachectl: cannot encode JSON: \(error)\n")
        }
    }

    /// An error that ended a command before it could report: stderr, plus the
    /// envelope on stdout with --json.
    static func reportFailure(_ message: String, json: Bool) {
        if json { printJSON(Envelope(changed: false, failed: true, msg: message, data: NoData())) }
        StandardStream.error.write("cachectl: error: \(message)\n")
    }

    /// The same for a ``CachectlError``: the JSON envelope also carries its code,
    /// field (as the flag), path and errno under `error`.
    static func reportFailure(_ error: CachectlError, json: Bool) {
        let message = error.description
        if json {
            printJSON(Envelope(changed: false, failed: true, msg: message, data: ErrorData(error: ErrorFields(error))))
        }
        StandardStream.error.write("cachectl: error: \(message)\n")
    }
}

/// A failure the command has already reported (its report says what failed):
/// `main` only exits with the status of its code.
struct ReportedFailure: Error {
    var code: CachectlError.Code
}

/// `error` in a failed command's JSON envelope.
struct ErrorData: Encodable {
    var error: ErrorFields
}

struct ErrorFields: Encodable {
    var code: CachectlError.Code
    var field: String?
    var path: String?
    var errno: String?

    init(_ error: CachectlError) {
        code = error.code
        field = error.field.flatMap { $0.flag ?? $0.description }
        path = error.path
        errno = error.errno.map(Errno.name)
    }
}

/// Messages for the person at the shell, on stderr: errors per file, warnings, notes.
/// `--quiet` keeps only errors; `-v` adds debug detail. Created on first use, which is
/// after `OutputOptions.bootstrap()`.
let console = Logger(label: "cachectl")

/// `cachectl: warning: message` on stderr; metadata as key=value.
struct StderrLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let prefix =
            switch event.level {
            case .info: ""
            case .notice: "note: "
            default: "\(event.level): "
            }
        var text = "cachectl: \(prefix)\(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            text += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        StandardStream.error.write(text + "\n")
    }
}

final class LockedFlag: Sendable {
    private let set = Mutex(false)
    /// True the first time only.
    func setOnce() -> Bool {
        set.withLock { set in
            defer { set = true }
            return !set
        }
    }
}
