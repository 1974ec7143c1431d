import CachectlSystem
import Glibc
import Synchronization

/// Asks the kernel to read a whole range of a file ahead (POSIX_FADV_WILLNEED), one
/// readahead window per call.
///
/// One WILLNEED call starts at most max(bdi io_pages, the file's ra_pages) of readahead,
/// however long the range (mm/readahead.c, force_page_cache_ra). ra_pages is the
/// device's read_ahead_kb; io_pages is the kernel's default 128 KiB except where the
/// filesystem sets it, as NFS does to its rsize (fs/nfs/super.c, since Linux 5.4). On
/// FUSE that is 128 KiB: measured on the warm benchmark's share (1 ms per request,
/// Linux 6.18), one hint over 64 MiB left 128 KiB resident; the same range hinted
/// 128 KiB at a time had 63.6 MiB resident 0.3 s later, all of its requests in flight.
///
/// The ra_pages that counts is the open file's, copied from the bdi when the file was
/// opened (file_ra_state_init): a file opened before its device's read_ahead_kb was
/// raised keeps the old window, and hints of the new one leave gaps for the readers.
/// Each device's window is read once for the life of the instance: make one per warm
/// run, or per mounted mirror.
public final class ReadaheadHint: Sendable {
    /// /proc and /sys, or a test's stand-ins.
    public let roots: KernelRoots
    private let windows = Mutex<[DeviceNumber: Int64]>([:])

    public init(roots: KernelRoots = .system) { self.roots = roots }

    /// WILLNEED over `length` bytes at `offset` of the file open as `fd`, a window at a
    /// time. Advice only: the first error ends it, as the kernel may ignore it anyway.
    public func willNeed(fd: Int32, offset: Int64, length: Int64) {
        var st = stat()
        let window = fstat(fd, &st) == 0 ? self.window(device: DeviceNumber(UInt64(st.st_dev))) : Self.smallestWindow
        var at = offset
        let end = offset + length
        while at < end {
            let step = min(window, end - at)
            guard posix_fadvise(fd, off_t(at), off_t(step), POSIX_FADV_WILLNEED) == 0 else { return }
            at += step
        }
    }

    /// The kernel's default io_pages (VM_READAHEAD_PAGES): what one call covers at least.
    public static let smallestWindow: Int64 = 128 << 10

    /// What one WILLNEED call covers on `device`: the largest of its read_ahead_kb
    /// (/sys/class/bdi/MAJ:MIN), its io_pages where user space can see them (a block
    /// device's max_sectors_kb; the `rsize` of an NFS mount) and 128 KiB.
    public func window(device: DeviceNumber) -> Int64 {
        // Under the lock: the readers of a run all ask at once, and one reads sysfs and mountinfo.
        windows.withLock { known in
            if let window = known[device] { return window }
            var window = Self.smallestWindow
            if let kib = Readahead.kilobytes(for: device, sys: roots.sys) { window = max(window, Int64(kib) << 10) }
            // A block device's io_pages is its queue's max_sectors_kb.
            if let kib = device.queueAttribute("max_sectors_kb", sys: roots.sys).flatMap({ Int64($0) }) {
                window = max(window, kib << 10)
            }
            let mounts = (try? MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")) ?? []
            if let mount = mounts.first(where: { $0.device == device }),
                let rsize = OptionString.value(mount.superOptions ?? "", "rsize")
                    ?? OptionString.value(mount.options, "rsize"),
                let bytes = rsize.flatMap({ Int64($0) })
            {
                window = max(window, bytes)
            }
            known[device] = window
            return window
        }
    }
}
