import CCachectlMount
import CachectlSystem
import Glibc

/// Mounts and unmounts: the one place cachectl calls mount(2) and umount2(2).
/// Network shares mount through libmount's context, so `mount.nfs`/`mount.cifs`
/// helpers run exactly as with mount(8); the options are the ones given, not
/// read from fstab.
public enum Mounter {
    /// mount(8) with explicit source, target, type and options.
    public static func mount(source: String, target: String, fstype: String, options: String) throws(CachectlError) {
        guard let context = cachectl_mnt_new_context() else { throw CachectlError("mnt_new_context", errno: ENOMEM) }
        defer { cachectl_mnt_free_context(context) }
        // Use exactly these options: never merge what fstab or mtab say.
        cachectl_mnt_context_set_optsmode(context, Int32(MNT_OMODE_IGNORE | MNT_OMODE_NOTAB))
        cachectl_mnt_context_set_source(context, source)
        cachectl_mnt_context_set_target(context, target)
        cachectl_mnt_context_set_fstype(context, fstype)
        cachectl_mnt_context_set_options(context, options.isEmpty ? "defaults" : options)
        // The helper (mount.nfs, mount.cifs) writes its reason ("access denied
        // by server") to stderr: capture it so the error carries it.
        let (rc, helperOutput) = HelperStderr.capture { cachectl_mnt_context_mount(context) }
        let helperFailed =
            cachectl_mnt_context_helper_executed(context) == 1 && cachectl_mnt_context_get_helper_status(context) != 0
        if rc == 0 && !helperFailed {
            HelperStderr.pass(helperOutput)
            return
        }
        var message = [CChar](repeating: 0, count: 1024)
        _ = cachectl_mnt_context_get_excode(context, rc, &message, message.count)
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let syscallErrno =
            cachectl_mnt_context_syscall_called(context) == 1 ? cachectl_mnt_context_get_syscall_errno(context) : 0
        let reason = HelperStderr.reason(helperOutput)
        let hint: String
        if !reason.isEmpty {
            hint = reason
        } else if !text.isEmpty {
            hint = text
        } else {
            hint =
                helperFailed
                ? "mount.\(fstype) helper exited \(cachectl_mnt_context_get_helper_status(context))"
                : "libmount error \(rc)"
        }
        throw CachectlError(
            "mount \(source) on", path: target, errno: syscallErrno > 0 ? syscallErrno : nil,
            hint: MountSecrets.redact(hint))
    }

    /// mount(2) itself, for local filesystems (tmpfs, ext4 on zram) whose
    /// flags and data cachectl chooses exactly: no helper, no option parsing.
    public static func mount(source: String, target: String, fstype: String, flags: UInt, data: String)
        throws(CachectlError)
    {
        _ = try sys("mount \(fstype) on", target) { Glibc.mount(source, target, fstype, flags, data) }
    }

    /// mount(2) with MS_REMOUNT: changes `data` (e.g. tmpfs `size=`) in place.
    public static func remount(target: String, fstype: String, flags: UInt, data: String) throws(CachectlError) {
        _ = try sys("remount", target) { Glibc.mount(nil, target, fstype, UInt(MS_REMOUNT) | flags, data) }
    }

    /// umount2(2), without helpers. A busy mount (EBUSY: something still uses
    /// it) is refused unless `force`, which detaches it lazily (MNT_DETACH: it
    /// goes away once the last user closes it).
    public static func unmount(_ target: String, force: Bool = false) throws(CachectlError) {
        if retryingEINTR({ umount2(target, 0) }) == 0 { return }
        let code = errno
        if code == EBUSY && force {
            _ = try sys("umount", target) { umount2(target, Int32(MNT_DETACH)) }
            return
        }
        throw CachectlError(
            "umount", path: target, errno: code,
            hint: code == EBUSY
                ? "a process has files open in it (see: fuser -vm \(target)); stop it, or force a lazy detach (--force)"
                : nil)
    }
}

/// The stderr of a mount helper that libmount runs: fd 2 points at an unlinked
/// temp file while `mnt_context_mount` runs (a file, not a pipe, so a chatty
/// helper can never block on it), then goes back.
enum HelperStderr {
    static func capture<T>(_ body: () -> T) -> (T, String) {
        fflush(nil)
        guard let file = tmpfile() else { return (body(), "") }
        defer { fclose(file) }
        let saved = dup(2)
        guard saved >= 0, dup2(fileno(file), 2) >= 0 else {
            if saved >= 0 { close(saved) }
            return (body(), "")
        }
        let value = body()
        fflush(nil)
        dup2(saved, 2)
        close(saved)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var offset: off_t = 0
        while bytes.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { pread(fileno(file), $0.baseAddress, $0.count, offset) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
            offset += off_t(n)
        }
        return (value, String(decoding: bytes, as: UTF8.self))
    }

    /// The helper's lines joined into one reason, secrets masked.
    static func reason(_ output: String) -> String {
        MountSecrets.redact(
            output.split(whereSeparator: \.isNewline)
                .map { line -> String in
                    var text = Substring(line)
                    while text.first?.isWhitespace == true { text = text.dropFirst() }
                    while text.last?.isWhitespace == true { text = text.dropLast() }
                    return String(text)
                }
                .filter { !$0.isEmpty }
                .joined(separator: "; "))
    }

    /// What a helper said on success (warnings) goes on to stderr, secrets masked.
    static func pass(_ output: String) {
        guard !output.isEmpty else { return }
        let text = MountSecrets.redact(output)
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes = bytes.dropFirst(n)
        }
    }
}
