import CLibMount
import CachectlSystem
import Glibc

/// Mounts and unmounts: the one place cachectl calls mount(2) and umount2(2).
/// Network shares mount through libmount's context, so `mount.nfs`/`mount.cifs`
/// helpers run exactly as with mount(8); the options are the ones given, not
/// read from fstab.
public enum Mounter {
    /// mount(8) with explicit source, target, type and options.
    public static func mount(source: String, target: String, fstype: String, options: String) throws(SystemError) {
        guard let context = mnt_new_context() else { throw SystemError("mnt_new_context", errno: ENOMEM) }
        defer { mnt_free_context(context) }
        // Use exactly these options: never merge what fstab or mtab say.
        mnt_context_set_optsmode(context, Int32(MNT_OMODE_IGNORE | MNT_OMODE_NOTAB))
        mnt_context_set_source(context, source)
        mnt_context_set_target(context, target)
        mnt_context_set_fstype(context, fstype)
        mnt_context_set_options(context, options.isEmpty ? "defaults" : options)
        let rc = mnt_context_mount(context)
        let helperFailed = mnt_context_helper_executed(context) == 1 && mnt_context_get_helper_status(context) != 0
        if rc == 0 && !helperFailed { return }
        var message = [CChar](repeating: 0, count: 1024)
        _ = mnt_context_get_excode(context, rc, &message, message.count)
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let syscallErrno = mnt_context_syscall_called(context) == 1 ? mnt_context_get_syscall_errno(context) : 0
        throw SystemError(
            "mount \(source) on", path: target, errno: syscallErrno > 0 ? syscallErrno : nil,
            hint: text.isEmpty ? (helperFailed ? "mount.\(fstype) helper exited \(mnt_context_get_helper_status(context))" : "libmount error \(rc)") : text)
    }

    /// mount(2) itself, for local filesystems (tmpfs, ext4 on zram) whose
    /// flags and data cachectl chooses exactly: no helper, no option parsing.
    public static func mount(source: String, target: String, fstype: String, flags: UInt, data: String) throws(SystemError) {
        _ = try sys("mount \(fstype) on", target) { Glibc.mount(source, target, fstype, flags, data) }
    }

    /// mount(2) with MS_REMOUNT: changes `data` (e.g. tmpfs `size=`) in place.
    public static func remount(target: String, fstype: String, flags: UInt, data: String) throws(SystemError) {
        _ = try sys("remount", target) { Glibc.mount(nil, target, fstype, UInt(MS_REMOUNT) | flags, data) }
    }

    /// umount2(2), without helpers. A busy mount (EBUSY: something still uses
    /// it) is refused unless `force`, which detaches it lazily (MNT_DETACH: it
    /// goes away once the last user closes it).
    public static func unmount(_ target: String, force: Bool = false) throws(SystemError) {
        if retryingEINTR({ umount2(target, 0) }) == 0 { return }
        let code = errno
        if code == EBUSY && force {
            _ = try sys("umount", target) { umount2(target, Int32(MNT_DETACH)) }
            return
        }
        throw SystemError(
            "umount", path: target, errno: code,
            hint: code == EBUSY
                ? "a process has files open in it (see: fuser -vm \(target)); stop it, or force a lazy detach (--force)"
                : nil)
    }
}
