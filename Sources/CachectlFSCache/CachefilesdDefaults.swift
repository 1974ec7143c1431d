import CachectlSystem
import Glibc

/// Debian's `/etc/default/cachefilesd`: its init script (what systemd runs for
/// cachefilesd.service on Debian and Ubuntu, through the SysV generator) starts
/// nothing unless the file says `RUN=yes` — and still exits 0, so `systemctl
/// restart cachefilesd` "succeeds" with no daemon. The package ships `#RUN=yes`.
public struct CachefilesdDefaults: Sendable, Equatable {
    public var path: String
    public var text: String

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }

    /// The file, when this system has one (nil elsewhere: Fedora's native unit needs none).
    public static func read(etc: String = "/etc") -> CachefilesdDefaults? {
        let path = etc + "/default/cachefilesd"
        return (try? AtomicFile.readText(path)).map { CachefilesdDefaults(path: path, text: $0) }
    }

    /// An uncommented `RUN=yes` (the script tests `"x$RUN" != "xyes"`; quotes allowed).
    public var runsDaemon: Bool {
        text.split(separator: "\n", omittingEmptySubsequences: false).contains { line in
            let value = line.trimmedSpaces()
            return ["RUN=yes", "RUN=\"yes\"", "RUN='yes'"].contains(value)
        }
    }

    /// The file with `RUN=yes`: the first `#RUN=...` or `RUN=...` line becomes
    /// `RUN=yes`, or the line is appended; every other byte stays.
    public var enabled: String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let isRunLine = { (line: String) -> Bool in
            var value = line.trimmedSpaces()
            while value.hasPrefix("#") { value = value.dropFirst().trimmedSpaces() }
            return value.hasPrefix("RUN=")
        }
        if let index = lines.firstIndex(where: isRunLine) {
            lines[index] = "RUN=yes"
            return lines.joined(separator: "\n")
        }
        let body = text.isEmpty || text.hasSuffix("\n") ? text : text + "\n"
        return body + "RUN=yes\n"
    }
}

extension CachefilesDaemon {
    /// cachefilesd.service is enabled: a `*.wants/` link of systemd's (a native
    /// unit) or an `rc[2-5].d/S..cachefilesd` link (Debian's SysV script, which
    /// systemd's generator turns into the unit). Read from the file system, so a
    /// check runs no program.
    public static func isEnabled(etc: String = "/etc") -> Bool {
        for wants in (try? Path.entries(of: etc + "/systemd/system")) ?? [] where wants.hasSuffix(".wants") {
            if access("\(etc)/systemd/system/\(wants)/cachefilesd.service", F_OK) == 0 { return true }
        }
        for level in 2...5 {
            if ((try? Path.entries(of: "\(etc)/rc\(level).d")) ?? []).contains(where: { $0.hasPrefix("S") && $0.hasSuffix("cachefilesd") }) { return true }
        }
        return false
    }
}
