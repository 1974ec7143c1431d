import CachectlPlan
import CachectlSystem
import Glibc

/// How `cachectl serve` listens and what it reads; validated before the server
/// binds (``validate()``), so a bad value is a usage error naming its field.
public struct ServeOptions: Sendable {
    /// IP address to listen on: 127.0.0.1 (default), ::1, or any other address
    /// (then a token file is required).
    public var host: String
    /// TCP port; 0 picks a free one (tests).
    public var port: Int
    /// A file holding the bearer token (mode 0600 or stricter, owned by this user).
    public var tokenFile: String?
    /// The state files and kernel roots every request reads, as the CLI's.
    public var environment: PlanEnvironment
    /// Seconds between the cache-traffic samples the page's chart draws.
    public var sampleInterval: Double
    /// Jobs (promote, demote, warm, tier changes) that may run at once.
    public var maxRunningJobs: Int

    public init(
        host: String = "127.0.0.1", port: Int = 5050, tokenFile: String? = nil,
        environment: PlanEnvironment = PlanEnvironment(), sampleInterval: Double = 10, maxRunningJobs: Int = 2
    ) {
        self.host = host
        self.port = port
        self.tokenFile = tokenFile
        self.environment = environment
        self.sampleInterval = sampleInterval
        self.maxRunningJobs = maxRunningJobs
    }

    /// Whether `host` is a loopback address (only this machine can connect).
    public var isLoopback: Bool {
        if host == "::1" { return true }
        var addr = in_addr()
        return inet_pton(AF_INET, host, &addr) == 1 && UInt32(bigEndian: addr.s_addr) >> 24 == 127
    }

    /// Checks every field and reads the token; nothing is bound yet.
    /// - Returns: the token, or nil when none is configured (loopback only).
    public func validate() throws(CachectlError) -> String? {
        var v4 = in_addr()
        var v6 = in6_addr()
        guard inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 else {
            throw .usage(
                ["host"], "host is not an IP address: \(InputBounds.show(host)) (examples: 127.0.0.1, ::1, 0.0.0.0)")
        }
        guard (0...65535).contains(port) else {
            throw .usage(["port"], "port must be 0 to 65535, got \(port)")
        }
        guard sampleInterval >= 0.05, sampleInterval <= 3600 else {
            throw .usage(["sample_interval"], "sample interval must be 0.05 to 3600 seconds")
        }
        guard let tokenFile else {
            if !isLoopback {
                throw .usage(
                    ["token_file"],
                    "token file is required to listen on \(host): only loopback (127.0.0.1, ::1) may be served without a token"
                )
            }
            return nil
        }
        return try Self.readToken(tokenFile)
    }

    /// The token in `path`: a regular file of this user, mode 0600 or stricter,
    /// holding at least 16 printable characters (a trailing newline is ignored).
    static func readToken(_ path: String) throws(CachectlError) -> String {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            throw CachectlError(.usage, "cannot read token file", field: ["token_file"], path: path, errno: errno)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw .usage(["token_file"], "token file \(path) is not a regular file")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw .usage(
                ["token_file"],
                "token file \(path) has mode \(String(st.st_mode & 0o777, radix: 8)); it must be readable by its owner only: chmod 600 \(path)"
            )
        }
        guard st.st_uid == geteuid() else {
            throw .usage(
                ["token_file"], "token file \(path) belongs to uid \(st.st_uid), not to this user (uid \(geteuid()))")
        }
        guard st.st_size <= 4096, let text = try? AtomicFile.readText(path) else {
            throw .usage(["token_file"], "token file \(path) cannot be read (at most 4096 bytes)")
        }
        var token = Substring(text)
        while let last = token.last, last == "\n" || last == "\r" { token = token.dropLast() }
        guard token.count >= 16, token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw .usage(
                ["token_file"],
                "token file \(path) must hold one token of at least 16 printable ASCII characters, e.g.: openssl rand -hex 32 > \(path)"
            )
        }
        return String(token)
    }
}
