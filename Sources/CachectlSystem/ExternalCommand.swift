import Foundation

/// Runs another program (mkfs, cachefilesd, systemctl, ...) and captures its output.
public struct ExternalCommand: Sendable {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var succeeded: Bool { status == 0 }
    }

    public var arguments: [String]

    public init(_ arguments: [String]) {
        precondition(!arguments.isEmpty)
        self.arguments = arguments
    }

    /// Directories searched after $PATH: root's tools live in sbin, which a
    /// non-login root shell (cron, Ansible) may not have on its PATH.
    static let systemDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The absolute path of `program`, or nil when it is not installed.
    public static func find(_ program: String) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"].map { $0.split(separator: ":").map(String.init) } ?? []
        for dir in path + systemDirectories where access(dir + "/" + program, X_OK) == 0 {
            return dir + "/" + program
        }
        return nil
    }

    /// Runs the command to completion. Throws when the program is missing or cannot
    /// start; a non-zero exit is returned in the result, not thrown.
    public func run(input: String? = nil) throws(SystemError) -> Result {
        guard let executable = Self.find(arguments[0]) else {
            throw SystemError.failed(
                "run \(arguments[0])", hint: "\(arguments[0]) is not installed or not on PATH")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        do {
            try process.run()
        } catch {
            throw SystemError.failed("run \(executable)", hint: "\(error)")
        }
        if let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try? inPipe.fileHandleForWriting.close()
        }
        // Drain both pipes concurrently so a chatty program cannot fill one and block.
        let errBox = DataBox()
        let errDone = DispatchSemaphore(value: 0)
        Thread {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            errDone.signal()
        }.start()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errDone.wait()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    /// Runs the command and throws when it exits non-zero, quoting its stderr.
    @discardableResult
    public func check(input: String? = nil, hint: String? = nil) throws(SystemError) -> Result {
        let result = try run(input: input)
        guard result.succeeded else {
            let detail = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw SystemError.failed(
                "\(arguments.joined(separator: " ")) exited \(result.status)" + (detail.isEmpty ? "" : ": \(detail)"),
                hint: hint)
        }
        return result
    }
}

/// Hands the stderr bytes from the reader thread to the caller (guarded by a lock).
private final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _data = Data()
    var data: Data {
        get { lock.withLock { _data } }
        set { lock.withLock { _data = newValue } }
    }
}
