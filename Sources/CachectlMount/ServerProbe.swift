import Glibc

/// Asks whether a file server answers before cachectl unmounts a share from
/// it: once unmounted, a share whose server is gone cannot be mounted again,
/// so an unreachable server means "leave the mount alone".
public enum ServerProbe {
    /// nil when a TCP connection to `host:port` opens within `timeout` seconds,
    /// else why not (in words, with the errno name).
    public static func unreachableReason(host: String, port: UInt16, timeout: Double = 3) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            return "cannot resolve \(host): \(String(cString: gai_strerror(rc)))"
        }
        defer { freeaddrinfo(list) }
        var lastError = ETIMEDOUT
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let info = current {
            current = info.pointee.ai_next
            let fd = socket(
                info.pointee.ai_family,
                Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastError = errno
                continue
            }
            defer { close(fd) }
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else {
                lastError = errno
                continue
            }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, Int32(timeout * 1000))
            if ready <= 0 {
                lastError = ready == 0 ? ETIMEDOUT : errno
                continue
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError == 0 { return nil }
            lastError = soError
        }
        return "\(host) port \(port) does not answer: \(String(cString: strerror(lastError)))"
    }
}
