import ArgumentParser
import CachectlSystem
import CachectlWarm
import FoundationEssentials
import Glibc

/// The paths a page-cache command works on, and how directories are filtered.
struct PathSelectionOptions: ParsableArguments {
    @Argument(
        help: ArgumentHelp(
            "Files or directories. A directory is walked recursively in sorted order; one shard of a split GGUF (model-00001-of-00004.gguf) selects every shard that exists; symlinks are followed.",
            valueName: "path"))
    var paths: [String]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Inside directories, keep only files matching this glob (repeatable), e.g. '*.gguf'.", valueName: "glob"))
    var include: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Inside directories, skip files matching this glob (repeatable), e.g. '*.txt'.", valueName: "glob"))
    var exclude: [String] = []

    @Option(
        name: .long,
        help: "How to measure page-cache residency: auto (cachestat on 6.5+, else mincore), cachestat, mincore.")
    var residencyMethod: ResidencyMethod = .auto

    func select() -> FileSelection {
        FileSelection(paths: paths, include: include, exclude: exclude)
    }
}

extension ResidencyMethod: ExpressibleByArgument {}
extension WarmDestination: ExpressibleByArgument {}
extension ReadLayout: ExpressibleByArgument {}
extension ReadTransfer: ExpressibleByArgument {}

extension ByteSize: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// Problems found while selecting files, reported on stderr; true when any is a failure.
func reportSelectionProblems(_ selection: FileSelection) -> Bool {
    for problem in selection.problems { console.error("\(problem)") }
    for skipped in selection.skipped { console.notice("\(skipped)") }
    for shard in selection.missingShards { console.warning("shard \(shard) does not exist; using the shards that do") }
    return !selection.problems.isEmpty
}

/// A per-file result of warm, residency or evict: a failure names its file.
protocol PerFileOutcome {
    var path: String { get }
    var error: String? { get }
}

extension FileWarmResult: PerFileOutcome {}
extension FileResidency: PerFileOutcome {}
extension FileEviction: PerFileOutcome {}

/// Reports each failed file on stderr; true when any failed.
func reportFileErrors(_ results: [some PerFileOutcome]) -> Bool {
    for result in results { if let error = result.error { console.error("\(result.path): \(error)") } }
    return results.contains { $0.error != nil }
}

struct Warm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warm",
        abstract: "Read model files into the page cache (and FS-Cache) so the next load runs at RAM speed.",
        discussion: """
            Parallel readers, chosen per file by what backs it (statfs, mountinfo): on a \
            local disk 16 readers each stream their own part of the file; on a network share \
            or FUSE many readers take interleaved chunks with posix_fadvise hints, so many \
            requests are in flight. Every reader splices what it reads through a pipe to \
            /dev/null (splice(2)), so the pages land in the page cache without being copied \
            to user space. --jobs, --chunk, --layout, --hints/--no-hints and --transfer override \
            that choice; the summary says what was used per source. Chunks already in the page \
            cache are skipped (cachestat(2) on Linux 6.5+, mincore(2) before). There is no size cap.

            On an NFS/CIFS share mounted with fsc, what is read also lands in FS-Cache on local \
            disk. --into disk stages a model there without filling RAM: each chunk is dropped \
            from the page cache right after it is read.

            Examples:
              cachectl warm ~/models/llama-3-70b-q4_k_m-00001-of-00004.gguf
              cachectl warm /srv/ollama/models --include 'sha256-*'
              cachectl warm --into disk /mnt/models/big.gguf
              cachectl warm --lock model.gguf        # keep it locked in RAM until Ctrl-C
              cachectl warm --jobs 8 --layout interleaved model.gguf   # override the choice
            """
    )

    @OptionGroup var selection: PathSelectionOptions

    @Option(name: .shortAndLong, help: "Reader threads (default: by source; local disk 16, share or FUSE 32).")
    var jobs: Int?

    @Option(
        help: ArgumentHelp(
            "Bytes per read (K, M, G suffixes; a multiple of the page size; default: by source, local disk 512K, share or FUSE 2M).",
            valueName: "size"))
    var chunk: ByteSize?

    @Option(
        help:
            "How readers divide a file: contiguous (each streams its own part; default on local disks) or interleaved (chunks in file order; default on shares and FUSE)."
    )
    var layout: ReadLayout?

    @Option(
        help:
            "ram: keep the data in the page cache. disk: only populate FS-Cache on an fsc mount, dropping pages from RAM behind the readers."
    )
    var into: WarmDestination = .ram

    @Flag(
        inversion: .prefixedNo,
        help:
            "Give the kernel posix_fadvise hints (SEQUENTIAL, WILLNEED ahead of the readers), or not (default: by source; on for shares and FUSE, off for local disks)."
    )
    var hints: Bool?

    @Option(
        help: ArgumentHelp(
            "How readers bring pages in: splice (through a pipe to /dev/null, nothing copied; the default), copy (pread into a buffer) or map (mmap and MADV_POPULATE_READ; Linux 6.9 and later, where a read error no longer hangs it).",
            valueName: "how"))
    var transfer: ReadTransfer?

    @Flag(help: "After warming, mlock(2) the files and hold them in RAM until interrupted (like vmtouch -l).")
    var lock = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if lock && into == .disk {
            throw ValidationError("--lock keeps files in RAM; it cannot be combined with --into disk")
        }
    }

    var options: WarmOptions {
        WarmOptions(
            jobs: jobs, chunkSize: chunk?.bytes, layout: layout, destination: into,
            residencyMethod: selection.residencyMethod, adviseAhead: hints, transfer: transfer)
    }

    func run() throws {
        try options.validate()
        output.bootstrap()
        if lock { SignalWaiter.blockTerminationSignals() }
        let files = selection.select()
        let selectionFailed = reportSelectionProblems(files)
        let progress = ProgressBar(total: files.totalSize, label: "warm", enabled: output.showsProgress)
        let report = Prewarmer(options: options).warm(files.files, progress: progress)
        let filesFailed = reportFileErrors(report.files)

        var locked: MemoryLock?
        var lockError: String?
        if lock {
            do { locked = try MemoryLock(files: files.files) } catch { lockError = error.description }
            if let lockError { console.error("\(lockError)") }
        }

        let failed = selectionFailed || filesFailed || lockError != nil
        let summary = Self.summary(report, problems: files.problems.count)
        let data = WarmOutput(report: report, problems: files.problems, lockedBytes: locked?.lockedBytes)
        if let locked, !failed {
            try CommandOutput.finish(output, changed: report.bytesRead > 0, failed: false, msg: summary, data: data) {
                summary
                    + "\nlocked \(ByteSize.format(locked.lockedBytes)) in RAM; press Ctrl-C (or send SIGTERM) to release"
            }
            let signal = SignalWaiter.waitForTermination()
            console.info(
                "received \(signal == SIGINT ? "SIGINT" : "SIGTERM"); released \(ByteSize.format(locked.lockedBytes))")
            return
        }
        try CommandOutput.finish(output, changed: report.bytesRead > 0, failed: failed, msg: summary, data: data) {
            summary
        }
    }

    static func summary(_ report: WarmReport, problems: Int) -> String {
        let warmed = report.files.count - report.failedFiles
        var text =
            "warmed \(warmed) file\(warmed == 1 ? "" : "s") (\(ByteSize.format(report.totalSize))) in "
            + formatFixed(report.seconds, digits: 2) + " s: read \(ByteSize.format(report.bytesRead))"
            + " at \(ByteSize.formatRate(bytes: report.bytesRead, seconds: report.seconds)), "
            + "\(ByteSize.format(report.bytesAlreadyResident)) already resident"
        if let percent = report.residencyPercent { text += "; \(formatFixed(percent, digits: 1))% resident now" }
        let failures = report.failedFiles + problems
        if failures > 0 { text += "; \(failures) failed" }
        if report.bytesRead > 0, !report.strategies.isEmpty { text += "; read as " + report.strategySummary }
        return text
    }
}

struct WarmOutput: Encodable {
    var report: WarmReport
    var problems: [FileProblem]
    var lockedBytes: UInt64?

    enum CodingKeys: String, CodingKey {
        case files, fileCount, failedFiles, bytesRead, bytesAlreadyResident, totalSize, seconds, throughput
        case residencyPercent, problems, lockedBytes, strategy, strategies
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(report.files, forKey: .files)
        try c.encode(report.files.count, forKey: .fileCount)
        try c.encode(report.failedFiles + problems.count, forKey: .failedFiles)
        try c.encode(report.bytesRead, forKey: .bytesRead)
        try c.encode(report.bytesAlreadyResident, forKey: .bytesAlreadyResident)
        try c.encode(report.totalSize, forKey: .totalSize)
        try c.encode(report.seconds, forKey: .seconds)
        try c.encode(report.throughput, forKey: .throughput)
        try c.encode(report.residencyPercent, forKey: .residencyPercent)
        try c.encode(report.strategySummary, forKey: .strategy)
        try c.encode(report.strategies, forKey: .strategies)
        try c.encode(problems.map { ["path": $0.path, "error": $0.reason] }, forKey: .problems)
        try c.encodeIfPresent(lockedBytes, forKey: .lockedBytes)
    }
}

/// SIGINT/SIGTERM handled by sigwait(2) on the main thread: block them before any
/// thread starts (threads inherit the mask), then wait.
enum SignalWaiter {
    static func blockTerminationSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    static func waitForTermination() -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        var signal: Int32 = 0
        while sigwait(&set, &signal) != 0 {}
        return signal
    }
}
