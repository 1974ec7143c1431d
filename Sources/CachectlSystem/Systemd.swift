import Glibc

/// The service manager, when it is systemd.
public enum Systemd {
    /// PID 1 is systemd (sd_booted(3): /run/systemd/system exists, and PID 1 says so).
    public static func isRunning(proc: String = "/proc") -> Bool {
        let comm = (try? AtomicFile.readText(proc + "/1/comm"))?.split(separator: "\n").first
        return comm == "systemd" && access("/run/systemd/system", F_OK) == 0
    }

    /// `systemctl daemon-reload`: after fstab or a unit file changed, so that the
    /// units systemd generates from them (a share's .mount unit) say the same.
    public static func reload() throws(CachectlError) {
        try ExternalCommand(["systemctl", "daemon-reload"]).check(hint: "run systemctl daemon-reload by hand")
    }
}
