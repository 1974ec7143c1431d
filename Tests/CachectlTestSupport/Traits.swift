import CachectlSystem
import Testing

extension Trait where Self == ConditionTrait {
    /// For tests that mount, or change kernel state a mount namespace keeps to
    /// itself: they run only as root in a private mount namespace
    /// (`unshare -m --propagation private swift test`), where nothing they mount can
    /// reach the machine's own mounts; elsewhere they are skipped, saying why.
    public static var rootInPrivateMountNamespace: Self {
        .enabled(
            if: Privileges.isRoot && Privileges.hasPrivateMountNamespace,
            "needs root in a private mount namespace (unshare -m)")
    }
}
