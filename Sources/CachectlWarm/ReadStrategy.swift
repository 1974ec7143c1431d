import CLinuxFS
import CachectlMount
import CachectlSystem
import Glibc

/// What backs a file, as far as reading it fast is concerned.
public enum FileSource: Sendable, Hashable, Codable {
    /// A local block-device filesystem (ext4, xfs, btrfs, ...). `rotational` from
    /// /sys/dev/block/MAJ:MIN/queue; nil when the device is not known (btrfs, dm).
    case local(rotational: Bool?)
    /// tmpfs/ramfs: the data is already in RAM.
    case memory
    /// NFS; `fsc`: mounted with FS-Cache.
    case nfs(fsc: Bool)
    /// CIFS/SMB; `fsc`: mounted with FS-Cache.
    case cifs(fsc: Bool)
    /// FUSE (cachectl's own mirror, sshfs, a share served by a daemon).
    case fuse
    /// Any other filesystem type, by its statfs f_type in hex.
    case other(String)

    /// Short name for reports: local, ram, nfs, nfs+fsc, cifs, cifs+fsc, fuse, fs-TYPE.
    public var name: String {
        switch self {
        case .local: return "local"
        case .memory: return "ram"
        case .nfs(let fsc): return fsc ? "nfs+fsc" : "nfs"
        case .cifs(let fsc): return fsc ? "cifs+fsc" : "cifs"
        case .fuse: return "fuse"
        case .other(let type): return "fs-\(type)"
        }
    }
}

/// How the readers of a run divide a file.
public enum ReadLayout: String, Sendable, Codable, CaseIterable {
    /// `--chunk`-sized pieces handed out in file order to whichever reader asks next,
    /// all readers sharing one open file: many requests in flight at once, which is
    /// what a latency-bound share needs.
    case interleaved
    /// Each reader streams its own contiguous 1/N of the file through a descriptor of
    /// its own, so its readahead window sees one sequential stream: what a local
    /// disk's readahead needs.
    case contiguous
}

/// How a reader brings a piece of a file into the page cache.
public enum ReadTransfer: String, Sendable, Codable, CaseIterable {
    /// pread(2) into the reader's buffer: the kernel copies every byte to user space.
    case copy
    /// Mapped and faulted in (madvise MADV_POPULATE_READ): nothing is copied, and
    /// readahead builds the filesystem's large folios. Safe from Linux 6.9: before
    /// kernel commit 631426ba1d45 a read error under it loops in the kernel.
    case map
    /// splice(2) into a pipe the size of the piece and on to /dev/null: the pages
    /// pass through by reference, read with the file's readahead in requests as
    /// large as pread's; nothing is copied or mapped, and a read error is an
    /// ordinary EIO on every kernel.
    case splice
}

/// Readers, read size, layout, hints and transfer for one source.
public struct ReadStrategy: Sendable, Hashable, Codable {
    public var jobs: Int
    public var chunkSize: UInt64
    public var layout: ReadLayout
    /// posix_fadvise SEQUENTIAL per descriptor and WILLNEED ahead of each reader.
    public var hints: Bool
    public var transfer: ReadTransfer

    public init(jobs: Int, chunkSize: UInt64, layout: ReadLayout, hints: Bool, transfer: ReadTransfer = .splice) {
        self.jobs = jobs
        self.chunkSize = chunkSize
        self.layout = layout
        self.hints = hints
        self.transfer = transfer
    }

    /// "4 readers x 2M contiguous, no hints" (then ", mapped" or ", spliced" when not copying).
    public var summary: String {
        let how =
            switch transfer {
            case .copy: ""
            case .map: ", mapped"
            case .splice: ", spliced"
            }
        return "\(jobs) reader\(jobs == 1 ? "" : "s") x \(Self.compact(chunkSize)) \(layout.rawValue), "
            + (hints ? "hints" : "no hints") + how
    }

    /// 2M, 512K, 65537 (the --chunk spelling).
    static func compact(_ bytes: UInt64) -> String {
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
        if bytes % (1 << 10) == 0 { return "\(bytes >> 10)K" }
        return "\(bytes)"
    }

    /// The strategy for files on `source` when no option overrides it: the one place
    /// that maps a source to (readers, chunk, layout, hints). Each row was chosen by
    /// the measurements in README.md ("Why these defaults"). Every row splices
    /// (``ReadTransfer/splice``): through a pipe the size of the piece, the file sees
    /// requests as large as pread's and nothing is copied to user space. Against
    /// copying, in the VM (NFS and CIFS, with and without fsc, 6.1 and 6.12, cold and
    /// from FS-Cache) splicing was faster in 21 of 24 cases over two runs; on the
    /// benchmark's FUSE share it took 0.88x copying's time (1 ms a request) and 0.91x
    /// (20 ms), on this project's disk 0.63x at a tenth of the CPU (README, "Every
    /// source splices").
    /// `kernel`: the running kernel's (major, minor); the NFS client's FS-Cache path changed in 6.4.
    public static func defaults(for source: FileSource, kernel: (Int, Int) = runningKernel) -> ReadStrategy {
        switch source {
        case .nfs(fsc: true) where kernel < (6, 4), .cifs(fsc: true):
            // Before 6.4 (Debian 12's 6.1) the NFS client looks each 4 KiB page up in
            // FS-Cache and writes each page a READ brought in to it synchronously,
            // before unlocking the page (fs/nfs/read.c: readpage_async_filler ->
            // nfs_fscache_read_page, nfs_readpage_release -> nfs_fscache_write_page).
            // Readers of one file then queue on its cache file: in the test bed one
            // reader in 16 MiB reads took 35 s for a cold 128 MiB file, 4 readers
            // 92-113 s, 16 readers 96 s (README, "Through an NFS mount with fsc").
            // One sequential reader with large reads, as `dd bs=16M`, is fastest.
            // CIFS with fsc, on every kernel: on 6.1 it writes each page to the cache
            // as NFS does, and cold one reader took 0.99-1.10x the best of cat and dd
            // where the share row took 1.30-1.36x and four readers 1.39-1.41x; on 6.12
            // (netfs, since 6.10) it was as fast as four contiguous readers (cold
            // 0.75-0.90x; from FS-Cache a median of 0.45 s over 19 runs, four readers
            // 0.46, the share row 0.51, cat 0.38) with 8 cache reads of 8 MiB per 64 MiB
            // where four readers made 11-23 and the share row 32-42. README, "CIFS
            // with fsc gets a row of its own".
            return ReadStrategy(jobs: 1, chunkSize: 16 << 20, layout: .contiguous, hints: false)
        case .nfs(fsc: true):
            // From 6.4 NFS reads through netfs, which writes to FS-Cache per request,
            // after the read. There 16 interleaved readers took 7.6 s for a cold 128 MiB
            // file (each READ waiting 211 ms against 16 ms for one reader), one reader
            // 3.1 s, four readers each streaming a quarter 3.1 s (dd 2.9 s); from
            // FS-Cache the four readers were fastest (1.5 s; cat 1.8 s). README.
            return ReadStrategy(jobs: 4, chunkSize: 1 << 20, layout: .contiguous, hints: false)
        case .local, .other:
            // Sixteen readers, each streaming its own part of the file in 512 KiB
            // pieces: the pages reach the page cache by the file's readahead. On this
            // project's virtio disk (2 GiB, Linux 6.18, 5 rounds, medians, same runs;
            // README) splicing took 0.90 s at 0.10 CPU-s, copying 1.14 s at 1.17 and
            // mapping and faulting in (MADV_POPULATE_READ) 1.14 s at 0.28; mapping is
            // only safe from 6.9 (before commit 631426ba1d45 a read error under
            // MADV_POPULATE_READ loops in the kernel), so it is never the default.
            // `rotational` is not used: virtio-blk disks report 1 (this machine's
            // does), and one sequential stream measured 0.33 GiB/s there against 0.95
            // for 16 readers.
            return ReadStrategy(jobs: 16, chunkSize: 512 << 10, layout: .contiguous, hints: false)
        case .memory:
            // Already resident (tmpfs): the plan finds nothing to read.
            return ReadStrategy(jobs: 1, chunkSize: 2 << 20, layout: .contiguous, hints: false)
        case .fuse, .nfs, .cifs:
            // Latency-bound: many requests in flight. On the benchmark's share (1 ms per
            // request) 32 interleaved readers with hints were the fastest choice at low
            // load (README) and among the fastest at load 13-35.
            return ReadStrategy(jobs: 32, chunkSize: 2 << 20, layout: .interleaved, hints: true)
        }
    }

    /// The running kernel's version, from uname(2); (0, 0) when it cannot be read.
    public static let runningKernel: (Int, Int) = {
        var name = utsname()
        guard uname(&name) == 0 else { return (0, 0) }
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : (0, 0)
    }()

    /// `defaults(for:)` with each option the user gave in place of the default.
    public static func choose(for source: FileSource, options: WarmOptions) -> ReadStrategy {
        var strategy = defaults(for: source)
        if let jobs = options.jobs { strategy.jobs = jobs }
        if let chunk = options.chunkSize { strategy.chunkSize = chunk }
        if let layout = options.layout { strategy.layout = layout }
        if let hints = options.adviseAhead { strategy.hints = hints }
        if let transfer = options.transfer { strategy.transfer = transfer }
        return strategy
    }
}

/// Finds what backs an open file: statfs(2) f_type, then for NFS/CIFS whether the
/// mount has `fsc` (mountinfo, by the file's st_dev), for a block device whether it
/// is rotational (sysfs).
public struct SourceDetector: Sendable {
    public var roots: KernelRoots
    public init(roots: KernelRoots = .system) { self.roots = roots }

    // statfs f_type values (linux/magic.h).
    static let nfsMagic: UInt32 = 0x6969
    static let cifsMagics: Set<UInt32> = [0xFF53_4D42, 0xFE53_4D42, 0x517B]
    static let fuseMagic: UInt32 = 0x6573_5546
    static let memoryMagics: Set<UInt32> = [0x0102_1994, 0x8584_58F6]  // tmpfs, ramfs
    /// ext2-4, xfs, btrfs, f2fs, zfs, overlay, vfat, exfat, jfs, reiserfs, bcachefs.
    static let localMagics: Set<UInt32> = [
        0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010, 0x2FC1_2FC1, 0x794C_7630, 0x4D44, 0x2011_BAB0,
        0x3153_464A, 0x5265_4973, 0xCA45_1A4E,
    ]

    /// The source of the file open as `fd`; `.other` when statfs fails.
    public func detect(fd: Int32) -> FileSource {
        var fs = statfs()
        var st = stat()
        guard fstatfs(fd, &fs) == 0, fstat(fd, &st) == 0 else { return .other("unknown") }
        return classify(type: UInt32(truncatingIfNeeded: fs.f_type), device: st.st_dev)
    }

    func classify(type: UInt32, device: dev_t) -> FileSource {
        let device = DeviceNumber(UInt64(device))
        if type == Self.nfsMagic { return .nfs(fsc: hasFsc(device)) }
        if Self.cifsMagics.contains(type) { return .cifs(fsc: hasFsc(device)) }
        if type == Self.fuseMagic { return .fuse }
        if Self.memoryMagics.contains(type) { return .memory }
        if Self.localMagics.contains(type) { return .local(rotational: rotational(device)) }
        return .other(String(type, radix: 16))
    }

    /// Whether a mount of `device` lists `fsc` (or `fsc=TAG`) in its mount or
    /// superblock options (NFS and CIFS show it in the latter), read with libmount.
    func hasFsc(_ device: DeviceNumber) -> Bool {
        let mounts = (try? MountTable.mounted(mountinfo: roots.proc + "/self/mountinfo")) ?? []
        return mounts.contains { mount in
            mount.device == device
                && (OptionString.contains(mount.options, "fsc")
                    || OptionString.contains(mount.superOptions ?? "", "fsc"))
        }
    }

    /// /sys/dev/block/MAJ:MIN/queue/rotational, or the parent's for a partition.
    func rotational(_ device: DeviceNumber) -> Bool? {
        switch device.queueAttribute("rotational", sys: roots.sys) {
        case "1": return true
        case "0": return false
        default: return nil
        }
    }
}
