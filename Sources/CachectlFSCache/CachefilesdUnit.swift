import CachectlSystem
import Glibc

/// cachefilesd.service as cachectl writes it where the distribution ships no
/// systemd unit of its own. Debian and Ubuntu ship only a SysV script, which
/// systemd's generator turns into the unit: it starts after remote file
/// systems are mounted, does nothing unless /etc/default/cachefilesd says
/// `RUN=yes` (and still exits 0), and reads the daemon's PID file the instant
/// the daemon forks, so a daemon slower than that (a full cache, a busy boot)
/// leaves the unit failed while the daemon runs. A distribution's own unit
/// (Fedora) or an administrator's is left alone.
public struct CachefilesdUnit: Sendable, Equatable {
    /// The first line of the unit cachectl writes: how a later run knows the file is its own.
    static let marker = "# Written by cachectl cache setup."

    public var path: String
    /// The file as it is (nil: absent).
    public var old: String?
    /// The file as it must be.
    public var text: String

    /// The unit this system needs written, or nil: a unit of the distribution's
    /// or an administrator's exists, cachectl's is current, or no cachefilesd
    /// is installed (the start that follows says so).
    /// - Parameters:
    ///   - etc: where the SysV script and /etc/systemd/system are.
    ///   - unitDirs: the distribution's unit directories.
    ///   - sbin: where to look for cachefilesd and modprobe, in order.
    public static func needed(
        configPath: String, etc: String = "/etc",
        unitDirs: [String] = ["/usr/lib/systemd/system", "/lib/systemd/system"],
        sbin: [String] = ["/usr/sbin", "/sbin"]
    ) throws -> CachefilesdUnit? {
        let path = etc + "/systemd/system/cachefilesd.service"
        let old = try? AtomicFile.readText(path)
        if let old, !old.hasPrefix(marker) { return nil }
        if old == nil, unitDirs.contains(where: { access($0 + "/cachefilesd.service", F_OK) == 0 }) { return nil }
        guard access(etc + "/init.d/cachefilesd", F_OK) == 0 || old != nil,
            let daemon = ExternalCommand.find("cachefilesd", in: sbin)
        else { return nil }
        let modprobe = ExternalCommand.find("modprobe", in: sbin) ?? "/sbin/modprobe"
        let text = try EmbeddedTemplates.cachefilesdService.render([
            "config": configPath, "daemon": daemon, "modprobe": modprobe,
        ])
        return old == text ? nil : CachefilesdUnit(path: path, old: old, text: text)
    }
}

extension CachefilesDaemon {
    /// cachefilesd.service is enabled: a link in one of systemd's `*.wants/`
    /// directories. Read from the file system, so a check runs no program. (A
    /// SysV script's rc links do not count: under systemd, cachectl replaces such
    /// a script with its own unit, which must be enabled itself.)
    public static func isEnabled(etc: String = "/etc") -> Bool {
        for wants in (try? Path.entries(of: etc + "/systemd/system")) ?? [] where wants.hasSuffix(".wants") {
            if access("\(etc)/systemd/system/\(wants)/cachefilesd.service", F_OK) == 0 { return true }
        }
        return false
    }
}
