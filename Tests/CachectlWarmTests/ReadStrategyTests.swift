import CachectlMount
import CachectlSystem
import CachectlTestSupport
import Foundation
import Glibc
import Testing

@testable import CachectlWarm

/// Which strategy a file gets, and the contiguous layout: every byte read once.
@Suite struct ReadStrategyTests {
    let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory() }

    // MARK: source detection

    @Test func aFileOnThisDiskIsLocal() throws {
        let path = try scratch.file("local.gguf", size: 4096)
        let file = try OpenFile(path)
        let source = SourceDetector().detect(fd: file.fd)
        guard case .local = source else {
            Issue.record("expected a local filesystem for \(path), got \(source)")
            return
        }
        let plan = Prewarmer().plan(FileSelection(paths: [path]).files)
        #expect(plan.results[0].source == source.name)
        #expect(plan.strategies.map(\.source) == [source.name])
        #expect(plan.strategies[0].strategy == ReadStrategy.defaults(for: source))
    }

    @Test(arguments: [
        (0x6969 as UInt32, "nfs"), (0xFF53_4D42, "cifs"), (0xFE53_4D42, "cifs"), (0x6573_5546, "fuse"),
        (0x0102_1994, "ram"), (0x8584_58F6, "ram"), (0x1234_5678, "fs-12345678"),
    ])
    func filesystemTypesMapToSources(type: UInt32, name: String) {
        // Device 0:0 has no mountinfo line and no sysfs entry: no fsc, rotational unknown.
        let detector = SourceDetector(roots: .fixture(scratch.path))
        #expect(detector.classify(type: type, device: 0).name == name)
    }

    @Test func localFilesystemsAskSysfsWhetherTheDiskSpins() throws {
        let root = scratch.path + "/roots"
        for (device, rotational) in [("8:0", "1"), ("259:0", "0")] {
            try FileManager.default.createDirectory(
                atPath: root + "/sys/dev/block/\(device)/queue", withIntermediateDirectories: true)
            try "\(rotational)\n".write(
                toFile: root + "/sys/dev/block/\(device)/queue/rotational", atomically: true, encoding: .utf8)
        }
        // A partition (8:1) has no queue of its own: its disk's, one level up.
        try FileManager.default.createDirectory(
            atPath: root + "/sys/dev/block/8:0/8:1", withIntermediateDirectories: true)
        let detector = SourceDetector(roots: .fixture(root))
        #expect(detector.rotational(DeviceNumber(major: 8, minor: 0)) == true)
        #expect(detector.rotational(DeviceNumber(major: 259, minor: 0)) == false)
        #expect(detector.rotational(DeviceNumber(major: 8, minor: 7)) == nil)
        #expect(detector.classify(type: 0xEF53, device: dev(8, 0)) == .local(rotational: true))
        #expect(detector.classify(type: 0x5846_5342, device: dev(259, 0)) == .local(rotational: false))
        // Recorded, not used: virtio disks claim to spin.
        #expect(
            ReadStrategy.defaults(for: .local(rotational: true))
                == ReadStrategy.defaults(for: .local(rotational: false)))
    }

    @Test func fscComesFromTheMountOfTheFilesDevice() throws {
        let root = scratch.path + "/roots"
        try FileManager.default.createDirectory(atPath: root + "/proc/self", withIntermediateDirectories: true)
        let mountinfo = """
            27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
            80 27 0:52 / /mnt/models rw,relatime shared:40 - nfs4 server:/models rw,vers=4.2,rsize=1048576,fsc,addr=10.0.0.1
            81 27 0:53 / /mnt/plain rw,relatime - nfs4 server:/plain rw,vers=4.2,rsize=1048576,addr=10.0.0.1
            82 27 0:54 / /mnt/smb rw,relatime - cifs //nas/models rw,vers=3.1.1,cache=strict,fsc,actimeo=1
            83 27 0:55 / /mnt/tagged rw,relatime - nfs4 server:/t rw,fsc=models,addr=10.0.0.1

            """
        try mountinfo.write(toFile: root + "/proc/self/mountinfo", atomically: true, encoding: .utf8)
        let detector = SourceDetector(roots: .fixture(root))
        #expect(detector.classify(type: 0x6969, device: dev(0, 52)) == .nfs(fsc: true))
        #expect(detector.classify(type: 0x6969, device: dev(0, 53)) == .nfs(fsc: false))
        #expect(detector.classify(type: 0xFF53_4D42, device: dev(0, 54)) == .cifs(fsc: true))
        #expect(detector.classify(type: 0x6969, device: dev(0, 55)) == .nfs(fsc: true))
        #expect(detector.classify(type: 0x6969, device: dev(0, 99)) == .nfs(fsc: false))
        #expect(FileSource.nfs(fsc: true).name == "nfs+fsc")
    }

    /// What one WILLNEED call covers: read_ahead_kb, a disk's max_sectors_kb or the
    /// mount's rsize (io_pages), or 128 KiB, whichever is largest.
    @Test func aHintsWindowIsTheDevicesReadaheadOrItsRsize() throws {
        let root = scratch.path + "/hint-roots"
        try FileManager.default.createDirectory(atPath: root + "/proc/self", withIntermediateDirectories: true)
        try """
        27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
        80 27 0:52 / /mnt/models rw,relatime - nfs4 server:/models rw,vers=4.2,rsize=1048576,addr=10.0.0.1
        81 27 0:53 / /mnt/fuse rw,nosuid - fuse.slowshare slowshare rw,user_id=0

        """.write(toFile: root + "/proc/self/mountinfo", atomically: true, encoding: .utf8)
        for (device, kib) in [("0:52", "128"), ("0:53", "4096"), ("0:54", "0")] {
            try FileManager.default.createDirectory(
                atPath: root + "/sys/class/bdi/" + device, withIntermediateDirectories: true)
            try (kib + "\n").write(
                toFile: root + "/sys/class/bdi/\(device)/read_ahead_kb", atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(
            atPath: root + "/sys/dev/block/8:0/queue", withIntermediateDirectories: true)
        try "1280\n".write(toFile: root + "/sys/dev/block/8:0/queue/max_sectors_kb", atomically: true, encoding: .utf8)
        let hint = ReadaheadHint(roots: .fixture(root))
        #expect(hint.window(device: DeviceNumber(major: 8, minor: 0)) == 1280 << 10)  // a disk's io_pages
        #expect(hint.window(device: DeviceNumber(major: 0, minor: 52)) == 1 << 20)  // rsize over 128 KiB readahead
        #expect(hint.window(device: DeviceNumber(major: 0, minor: 53)) == 4 << 20)  // readahead raised
        #expect(hint.window(device: DeviceNumber(major: 0, minor: 54)) == 128 << 10)  // readahead off
        #expect(hint.window(device: DeviceNumber(major: 0, minor: 99)) == 128 << 10)  // nothing known
    }

    /// The NFS client's FS-Cache path changed in 6.4 (per-page and synchronous before,
    /// netfs after): the fsc row follows the kernel, the plain NFS row does not.
    @Test func nfsWithFscFollowsTheKernelsCachePath() {
        let old = ReadStrategy.defaults(for: .nfs(fsc: true), kernel: (6, 1))
        #expect(old.jobs == 1 && old.chunkSize == 16 << 20)
        let netfs = ReadStrategy.defaults(for: .nfs(fsc: true), kernel: (6, 12))
        #expect(netfs.jobs == 4 && netfs.layout == .contiguous && !netfs.hints)
        #expect(
            ReadStrategy.defaults(for: .nfs(fsc: false), kernel: (6, 1))
                == ReadStrategy.defaults(for: .nfs(fsc: false), kernel: (6, 12)))
        #expect(ReadStrategy.runningKernel.0 >= 5)
    }

    /// CIFS with fsc reads as one sequential 16 MiB reader on every kernel (as NFS
    /// with fsc before 6.4); plain CIFS keeps the share row.
    @Test func cifsWithFscReadsAsOneSequentialReader() {
        let sequential = ReadStrategy(jobs: 1, chunkSize: 16 << 20, layout: .contiguous, hints: false)
        for kernel in [(6, 1), (6, 8), (6, 12), (7, 0)] {
            #expect(ReadStrategy.defaults(for: .cifs(fsc: true), kernel: kernel) == sequential)
            #expect(ReadStrategy.defaults(for: .cifs(fsc: false), kernel: kernel) == ReadStrategy.defaults(for: .fuse))
        }
        #expect(ReadStrategy.defaults(for: .nfs(fsc: true), kernel: (6, 1)) == sequential)
    }

    /// Every source splices on every kernel (mapping would hang on a read error
    /// before 6.9; copying was slower on every source measured).
    @Test func everySourceSplicesOnEveryKernel() {
        let sources: [FileSource] = [
            .local(rotational: false), .other("1234"), .nfs(fsc: false), .nfs(fsc: true), .cifs(fsc: false),
            .cifs(fsc: true), .fuse,
        ]
        for source in sources {
            for kernel in [(6, 1), (6, 8), (6, 9), (6, 12)] {
                #expect(ReadStrategy.defaults(for: source, kernel: kernel).transfer == .splice)
            }
        }
    }

    @Test func optionsOverrideOnlyWhatTheyName() {
        let source = FileSource.local(rotational: false)
        let defaults = ReadStrategy.defaults(for: source)
        #expect(ReadStrategy.choose(for: source, options: WarmOptions()) == defaults)
        let jobs = ReadStrategy.choose(for: source, options: WarmOptions(jobs: 7))
        #expect(
            jobs
                == ReadStrategy(
                    jobs: 7, chunkSize: defaults.chunkSize, layout: defaults.layout, hints: defaults.hints,
                    transfer: defaults.transfer))
        #expect(ReadStrategy.choose(for: source, options: WarmOptions(transfer: .copy)).transfer == .copy)
        let all = ReadStrategy.choose(
            for: .fuse, options: WarmOptions(jobs: 3, chunkSize: 1 << 20, layout: .contiguous, adviseAhead: false))
        #expect(all == ReadStrategy(jobs: 3, chunkSize: 1 << 20, layout: .contiguous, hints: false))
        #expect(all.summary == "3 readers x 1M contiguous, no hints, spliced")
        #expect(
            ReadStrategy.choose(for: .fuse, options: WarmOptions(transfer: .copy)).summary
                == "32 readers x 2M interleaved, hints")
    }

    /// A real tmpfs, mounted in this test's private mount namespace.
    @Test(
        .rootInPrivateMountNamespace)
    func aFileOnTmpfsIsRAMAndNeedsNoReading() throws {
        let mountpoint = scratch.path + "/tmpfs"
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        #expect(mount("tmpfs", mountpoint, "tmpfs", 0, "size=8m") == 0)
        defer { umount2(mountpoint, Int32(MNT_DETACH)) }
        let path = mountpoint + "/model.gguf"
        try Data(repeating: 7, count: 3 << 20).write(to: URL(fileURLWithPath: path))

        let file = try OpenFile(path)
        #expect(SourceDetector().detect(fd: file.fd) == .memory)
        let report = Prewarmer().warm(FileSelection(paths: [path]).files)
        #expect(report.files[0].source == "ram")
        #expect(report.strategies.map(\.source) == ["ram"])
        #expect(report.bytesRead == 0)
        #expect(report.residencyPercent == 100)
    }

    // MARK: contiguous layout

    /// Regions cover the chunks exactly once, in order, each a run of adjacent chunks
    /// no longer than the reader's share rounded up to the chunk.
    @Test(arguments: [1, 2, 3, 4, 7, 16])
    func regionsCoverEveryChunkOnce(jobs: Int) {
        let chunk: UInt64 = 1 << 20
        // Two files: one of an odd size with a hole, one smaller than a chunk.
        var chunks: [Chunk] = []
        let files: [(Int, [Range<UInt64>])] = [
            (0, [0..<(5 << 20) + 123, (9 << 20)..<(37 << 20) + 4097]), (1, [0..<4095]),
        ]
        for (file, ranges) in files {
            for range in ranges {
                var offset = range.lowerBound
                while offset < range.upperBound {
                    let length = min(chunk, range.upperBound - offset)
                    chunks.append(Chunk(file: file, offset: offset, length: length))
                    offset += length
                }
            }
        }
        let strategy = ReadStrategy(jobs: jobs, chunkSize: chunk, layout: .contiguous, hints: false)
        let regions = Prewarmer.regions(of: chunks, strategy: strategy)
        var covered: [Int: [Range<UInt64>]] = [:]
        for region in regions {
            covered[region.file, default: []].append(region.offset..<region.offset + region.length)
        }
        var expected: [Int: [Range<UInt64>]] = [:]
        for chunk in chunks { expected[chunk.file, default: []].append(chunk.offset..<chunk.offset + chunk.length) }
        #expect(merge(covered[0]!) == merge(expected[0]!))
        #expect(merge(covered[1]!) == merge(expected[1]!))
        #expect(regions.reduce(0) { $0 + $1.length } == chunks.reduce(0) { $0 + $1.length })
        // In order, never overlapping, and one region per reader where the data is contiguous.
        for (a, b) in zip(regions, regions.dropFirst()) where a.file == b.file {
            #expect(a.offset + a.length <= b.offset)
        }
        let file0 = chunks.filter { $0.file == 0 }.reduce(0) { $0 + $1.length }
        let target = max(chunk, ((file0 + UInt64(jobs) - 1) / UInt64(jobs) + chunk - 1) / chunk * chunk)
        for region in regions where region.file == 0 { #expect(region.length <= target) }
        #expect(regions.filter { $0.file == 0 }.count <= jobs + 2)  // + 2: each data run ends in a short region
        #expect(
            Prewarmer.regions(
                of: chunks, strategy: ReadStrategy(jobs: jobs, chunkSize: chunk, layout: .interleaved, hints: false)
            ).count == chunks.count)
    }

    /// A sparse file of an odd size, part of it already resident: contiguous readers
    /// read exactly the data not yet in the page cache, each byte once.
    @Test(arguments: [(3, false), (4, true), (1, false)])
    func contiguousReadersReadEveryByteOnce(jobs: Int, hints: Bool) throws {
        let path = scratch.path + "/sparse-odd.gguf"
        let size = (37 << 20) + 4097
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        #expect(ftruncate(fd, off_t(size)) == 0)
        var generator = SplitMix(seed: 9)
        let data = (0..<(6 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        for offset in [0, 20 << 20, size - (3 << 20) - 11] {  // the last run ends at the odd size
            #expect(data.withUnsafeBytes { pwrite(fd, $0.baseAddress, 3 << 20, off_t(offset)) } == 3 << 20)
        }
        close(fd)
        try scratch.evict(path)
        let file = try OpenFile(path)
        let dataBytes = RegularFile.dataRanges(fd: file.fd, size: UInt64(size)).reduce(0) { $0 + $1.count }
        #expect(dataBytes >= 9 << 20 && dataBytes < 10 << 20)
        // Make the middle data run's first MiB resident.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        #expect(try file.read(into: buffer, at: 20 << 20) == 1 << 20)

        let warmer = Prewarmer(
            options: WarmOptions(jobs: jobs, chunkSize: 1 << 20, layout: .contiguous, adviseAhead: hints))
        let report = warmer.warm(FileSelection(paths: [path]).files)
        #expect(report.failedFiles == 0)
        #expect(report.bytesRead == UInt64(dataBytes) - (1 << 20))
        #expect(report.bytesAlreadyResident == UInt64(size) - report.bytesRead)
        #expect(report.residencyPercent == 100)
        #expect(
            report.strategySummary.contains(
                "\(jobs) reader\(jobs == 1 ? "" : "s") x 1M contiguous, \(hints ? "hints" : "no hints")"))
        #expect(warmer.warm(FileSelection(paths: [path]).files).bytesRead == 0)
    }

    private func dev(_ major: UInt32, _ minor: UInt32) -> dev_t {
        dev_t(
            UInt64(minor & 0xff) | UInt64(major & 0xfff) << 8 | UInt64(minor & ~0xff) << 12 | UInt64(major & ~0xfff)
                << 32)
    }

    private func merge(_ ranges: [Range<UInt64>]) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, last.upperBound == range.lowerBound {
                out[out.count - 1] = last.lowerBound..<range.upperBound
            } else {
                out.append(range)
            }
        }
        return out
    }
}
