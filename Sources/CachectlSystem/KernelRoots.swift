/// Where the kernel's filesystems and the system's configuration live. Every
/// reader takes these as a parameter with the real paths as default, so the same
/// code runs against a fixture tree in unit tests and the real kernel otherwise.
public struct KernelRoots: Sendable, Equatable {
    public var proc: String
    public var sys: String
    public var configfs: String
    public var dev: String
    public var etc: String

    public init(
        proc: String = "/proc", sys: String = "/sys", configfs: String = "/sys/kernel/config",
        dev: String = "/dev", etc: String = "/etc"
    ) {
        self.proc = proc
        self.sys = sys
        self.configfs = configfs
        self.dev = dev
        self.etc = etc
    }

    /// The running system.
    public static let system = KernelRoots()

    /// A fixture tree laid out like `/`: `root/proc`, `root/sys`, ...
    public static func fixture(_ root: String) -> KernelRoots {
        KernelRoots(
            proc: root + "/proc", sys: root + "/sys", configfs: root + "/sys/kernel/config",
            dev: root + "/dev", etc: root + "/etc")
    }
}
