import CachectlSystem
import Glibc

/// Limits on what cachectl reads from users and echoes back (issue 13, class 5).
public enum InputBounds {
    /// The largest configuration file read (1 MiB): ample for any machine's state,
    /// small enough that parsing is instant and an error can never echo megabytes.
    public static let maxConfigBytes = 1 << 20

    /// Problems of one configuration file reported at most (a 1 MiB file of unknown
    /// keys must not print megabytes).
    public static let maxErrorsShown = 20

    /// Characters of a value an error message shows at most.
    public static let shownCharacters = 100

    /// `value` as an error shows it: quoted, control characters escaped (a newline
    /// cannot start a fake line of output), cut after ``shownCharacters`` with the
    /// total length said.
    public static func show(_ value: String) -> String {
        var out = ""
        var count = 0
        for scalar in value.unicodeScalars {
            if count == shownCharacters {
                return "'" + out + "'… (\(value.unicodeScalars.count) characters)"
            }
            count += 1
            out +=
                scalar.value < 0x20 || scalar.value == 0x7f || (scalar.value >= 0x80 && scalar.value < 0xa0)
                ? scalar.escaped(asASCII: true) : String(scalar)
        }
        return "'" + out + "'"
    }

    /// A message cut to a few hundred characters: the backstop for messages that
    /// embed a value without ``show(_:)`` (library messages, YAML syntax errors).
    public static func clip(_ message: String, limit: Int = 300) -> String {
        guard message.unicodeScalars.count > limit else { return message }
        return String(String.UnicodeScalarView(message.unicodeScalars.prefix(limit)))
            + "… (message cut, \(message.unicodeScalars.count) characters)"
    }

    /// The first control character (below U+0020, DEL, C1) in `value`, if any.
    public static func controlCharacter(in value: String) -> Unicode.Scalar? {
        value.unicodeScalars.first { $0.value < 0x20 || $0.value == 0x7f || ($0.value >= 0x80 && $0.value < 0xa0) }
    }

    /// Reads a configuration file of at most ``maxConfigBytes``, refusing anything
    /// else before reading it: a FIFO or device (opened with O_NONBLOCK, so open(2)
    /// cannot hang) or a larger file.
    static func readConfig(_ path: String) throws(ConfigError) -> String {
        let file: OpenFile
        do {
            file = try OpenFile(path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY)
        } catch {
            throw ConfigError(file: path, path: "", message: error.description)
        }
        var st = stat()
        guard fstat(file.fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw ConfigError(file: path, path: "", message: "not a regular file; a configuration must be a YAML file")
        }
        guard st.st_size <= maxConfigBytes else {
            throw ConfigError(
                file: path, path: "",
                message:
                    "the file is \(ByteSize.format(UInt64(st.st_size))); a configuration may be at most \(ByteSize.format(UInt64(maxConfigBytes)))"
            )
        }
        // Read at most one byte more than allowed: a file that grew is refused too.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxConfigBytes + 1, alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done <= maxConfigBytes {
            let n = retryingEINTR { pread(file.fd, buffer.baseAddress! + done, maxConfigBytes + 1 - done, off_t(done)) }
            if n < 0 {
                throw ConfigError(
                    file: path, path: "", message: CachectlError("read", path: path, errno: errno).description)
            }
            if n == 0 { break }
            done += n
        }
        guard done <= maxConfigBytes else {
            throw ConfigError(
                file: path, path: "",
                message:
                    "the file grew past \(ByteSize.format(UInt64(maxConfigBytes))) while being read; a configuration may be at most that"
            )
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<done]), as: UTF8.self)
    }
}

extension ConfigError {
    /// The same error with its message and path cut to a bounded length.
    var bounded: ConfigError {
        var copy = self
        copy.message = InputBounds.clip(message)
        copy.path = InputBounds.clip(path, limit: 120)
        return copy
    }
}
