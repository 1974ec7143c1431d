import Glibc

/// Standard output and standard error, written with write(2) whole (partial writes
/// and EINTR retried), unbuffered: what cachectl prints is in order across both.
public enum StandardStream: Sendable {
    case output, error

    public var fd: Int32 { self == .output ? STDOUT_FILENO : STDERR_FILENO }

    /// Whether this stream is a terminal (progress lines and colour only go there).
    public var isTerminal: Bool { isatty(fd) == 1 }

    /// Writes `text`; a closed pipe or full disk is not cachectl's error to report.
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Writes `bytes` whole; stops quietly on a closed pipe or a full disk.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let n = retryingEINTR { Glibc.write(fd, base + offset, bytes.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }
}
