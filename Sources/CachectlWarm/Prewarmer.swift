import CCachectlShims
import CachectlMount
import CachectlSystem
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// Where warmed data should end up.
public enum WarmDestination: String, Sendable, Codable, CaseIterable {
    /// The page cache: data stays in RAM (and, on an `fsc` mount, also reaches FS-Cache).
    case ram
    /// FS-Cache on local disk only: read through, then drop each chunk from RAM
    /// (POSIX_FADV_DONTNEED) so staging a large model does not fill memory.
    case disk
}

/// Tuning of the parallel reader. Each field left nil is chosen per file by what
/// backs it (``ReadStrategy/defaults(for:)``, measured in README.md); a value given
/// here overrides that choice for every file.
public struct WarmOptions: Sendable, Equatable {
    /// Reader threads (--jobs).
    public var jobs: Int?
    /// Bytes each read covers; a multiple of the page size (--chunk).
    public var chunkSize: UInt64?
    /// How readers divide a file (--layout).
    public var layout: ReadLayout?
    public var destination: WarmDestination
    public var residencyMethod: ResidencyMethod
    /// posix_fadvise hints (--hints/--no-hints): SEQUENTIAL on each descriptor and
    /// WILLNEED ahead of the readers.
    public var adviseAhead: Bool?
    /// How pieces are brought in: copied, mapped, or sent to /dev/null (--transfer).
    public var transfer: ReadTransfer?

    /// The reader count and chunk of the interleaved layout on shares (also what
    /// `apply`'s warm lists default to).
    public static let defaultJobs = 16
    public static let defaultChunkSize: UInt64 = 2 << 20
    public static let jobsRange = 1...256
    public static let chunkRange: ClosedRange<UInt64> = (64 << 10)...(1 << 30)

    public init(
        jobs: Int? = nil, chunkSize: UInt64? = nil, layout: ReadLayout? = nil,
        destination: WarmDestination = .ram, residencyMethod: ResidencyMethod = .auto, adviseAhead: Bool? = nil,
        transfer: ReadTransfer? = nil
    ) {
        self.jobs = jobs
        self.chunkSize = chunkSize
        self.layout = layout
        self.destination = destination
        self.residencyMethod = residencyMethod
        self.adviseAhead = adviseAhead
        self.transfer = transfer
    }

    /// Checks the reader count and chunk size; the error names the field.
    public func validate() throws(CachectlError) {
        if let jobs, !Self.jobsRange.contains(jobs) {
            throw .usage(
                ["jobs"],
                "jobs must be between \(Self.jobsRange.lowerBound) and \(Self.jobsRange.upperBound), got \(jobs)")
        }
        if let chunkSize {
            if !Self.chunkRange.contains(chunkSize) {
                throw .usage(["chunk"], "chunk must be between 64K and 1G, got \(ByteSize.format(chunkSize))")
            }
            if chunkSize % UInt64(cachectl_page_size()) != 0 {
                throw .usage(
                    ["chunk"],
                    "chunk must be a multiple of the page size (\(cachectl_page_size()) bytes), got \(chunkSize)")
            }
        }
    }
}

/// What warming one file did.
public struct FileWarmResult: Sendable, Codable, Equatable {
    public var path: String
    public var size: UInt64
    public var bytesRead: UInt64 = 0
    public var bytesAlreadyResident: UInt64 = 0
    /// Resident bytes after warming; nil when residency cannot be measured.
    public var residentAfter: UInt64?
    /// Why this file failed (missing, permission, EIO, truncated); nil on success.
    public var error: String?
    /// What backs the file (``FileSource/name``: local, nfs+fsc, fuse, ...); nil when it could not be opened.
    public var source: String?
}

/// The outcome of ``Prewarmer/warm(_:progress:)``.
public struct WarmReport: Sendable, Codable, Equatable {
    public var files: [FileWarmResult]
    public var bytesRead: UInt64
    public var bytesAlreadyResident: UInt64
    public var totalSize: UInt64
    public var seconds: Double
    /// Bytes read per second of wall time.
    public var throughput: Double
    /// Resident share of the measurable files after warming; nil when none could be measured.
    public var residencyPercent: Double?
    /// The strategy used for each source, in the order first met.
    public var strategies: [SourceStrategy] = []
    /// "local: 4 readers x 2M contiguous, no hints; fuse: ..." (empty when nothing was planned).
    public var strategySummary: String {
        strategies.map { "\($0.source): \($0.strategy.summary)" }.joined(separator: "; ")
    }
    public var failedFiles: Int { files.filter { $0.error != nil }.count }
}

/// One source of a run and how its files were read.
public struct SourceStrategy: Sendable, Codable, Equatable {
    public var source: String
    public var strategy: ReadStrategy
    public var files: Int
}

/// Reads files into the page cache with parallel `pread` workers, skipping chunks
/// that are already resident. Each file's source picks readers, chunk, layout and
/// hints (``ReadStrategy``); files of one strategy are read together, one strategy
/// after another.
///
/// Workers are threads of our own (blocking reads must not run on Swift's
/// cooperative pool), each with one buffer of the chunk size for the whole run.
/// Interleaved readers share one descriptor per file; contiguous readers open
/// their own, so each has its own readahead state. Hints: interleaved, a
/// POSIX_FADV_WILLNEED for the chunk `jobs` positions ahead; contiguous,
/// POSIX_FADV_SEQUENTIAL on the reader's descriptor and WILLNEED one chunk ahead;
/// each WILLNEED a readahead window at a time (``ReadaheadHint``), so the whole chunk
/// is asked for at once.
public struct Prewarmer: Sendable {
    public var options: WarmOptions
    public var detector: SourceDetector

    public init(options: WarmOptions = WarmOptions(), detector: SourceDetector = SourceDetector()) {
        self.options = options
        self.detector = detector
    }

    /// Plans and reads: ``plan(_:)`` then ``run(_:progress:)``.
    public func warm(_ files: [SelectedFile], progress: ProgressBar? = nil) -> WarmReport {
        run(plan(files), progress: progress)
    }

    /// Opens each file in turn (closing it again: nothing stays open between plan and
    /// run, so any number of files fits under RLIMIT_NOFILE), sizes it now (it may have
    /// changed since selection), finds its source and so its ``ReadStrategy``, and
    /// lists the pieces of its data ranges that are not yet resident. Holes are never
    /// read: they count as already resident. Reads no data.
    public func plan(_ files: [SelectedFile]) -> WarmPlan {
        let start = Monotonic.now()
        var results = files.map { FileWarmResult(path: $0.path, size: $0.size) }
        var groups: [PlanGroup] = []
        var groupIndex: [ReadStrategy: Int] = [:]
        var strategies: [SourceStrategy] = []
        var sources: [UInt64: FileSource] = [:]  // by st_dev: one statfs/mountinfo per filesystem

        for (index, selected) in files.enumerated() {
            do {
                let (file, st) = try RegularFile.openForProbing(selected.path)
                let size = UInt64(st.st_size)
                results[index].size = size
                let device = UInt64(st.st_dev)
                let source = sources[device] ?? detector.detect(fd: file.fd)
                sources[device] = source
                results[index].source = source.name
                let strategy = ReadStrategy.choose(for: source, options: options)
                if let known = strategies.firstIndex(where: { $0.source == source.name }) {
                    strategies[known].files += 1
                } else {
                    strategies.append(SourceStrategy(source: source.name, strategy: strategy, files: 1))
                }
                let group: Int
                if let known = groupIndex[strategy] {
                    group = known
                } else {
                    group = groups.count
                    groupIndex[strategy] = group
                    groups.append(PlanGroup(strategy: strategy, regions: []))
                }
                if Residency.isFullyCached(file.fd, size: size, method: options.residencyMethod) {
                    results[index].bytesAlreadyResident = size  // all cached: one cachestat, no hole walk
                    continue
                }
                let probe = try ResidencyProbe(file: file, size: size, preferred: options.residencyMethod)
                let resident = probe.residentBytes() ?? 0
                if resident >= size {
                    results[index].bytesAlreadyResident = size
                    continue
                }
                var chunks: [Chunk] = []
                var covered: UInt64 = 0
                for range in probe.dataRanges {
                    var offset = range.lowerBound
                    while offset < range.upperBound {
                        let length = min(strategy.chunkSize, range.upperBound - offset)
                        // A chunk is skipped only when every page of it is resident.
                        if resident > 0, let chunkResident = probe.residentBytes(offset: offset, length: length),
                            chunkResident >= length
                        {
                            results[index].bytesAlreadyResident += length
                        } else {
                            chunks.append(Chunk(file: index, offset: offset, length: length))
                        }
                        offset += length
                    }
                    covered += range.upperBound - range.lowerBound
                }
                results[index].bytesAlreadyResident += size - min(size, covered)
                groups[group].regions += Self.regions(of: chunks, strategy: strategy)
            } catch {
                results[index].error = error.description
            }
        }

        return WarmPlan(started: start, results: results, groups: groups, strategies: strategies)
    }

    /// The work items of one file: its chunks as they are (interleaved), or runs of
    /// adjacent chunks merged into about `jobs` regions of equal size, a multiple of
    /// the chunk (contiguous). Every chunk lands in exactly one region, in order.
    static func regions(of chunks: [Chunk], strategy: ReadStrategy) -> [Chunk] {
        guard strategy.layout == .contiguous, !chunks.isEmpty else { return chunks }
        let total = chunks.reduce(0) { $0 + $1.length }
        let chunk = strategy.chunkSize
        let share = (total + UInt64(strategy.jobs) - 1) / UInt64(strategy.jobs)
        let target = max(chunk, (share + chunk - 1) / chunk * chunk)
        var regions: [Chunk] = []
        for next in chunks {
            if let last = regions.last, last.file == next.file, last.offset + last.length == next.offset,
                last.length + next.length <= target
            {
                regions[regions.count - 1].length += next.length
            } else {
                regions.append(next)
            }
        }
        return regions
    }

    /// Reads the planned work, one strategy group after another, each with its own
    /// readers, then measures residency. An interleaved group opens a file when the
    /// first worker reaches one of its chunks and closes it after its last chunk, a
    /// contiguous reader opens the file for its region: either way at most about
    /// `jobs` files are open at once.
    public func run(_ plan: WarmPlan, progress: ProgressBar? = nil) -> WarmReport {
        var results = plan.results
        let state = FileTallies(fileCount: results.count)
        let paths = results.map(\.path)
        let hint = ReadaheadHint(roots: detector.roots)
        for group in plan.groups where !group.regions.isEmpty {
            Self.read(
                group, paths: paths, state: state, destination: options.destination, hint: hint, progress: progress)
        }
        progress?.finish()

        // Record per-file outcomes, drop what --into disk left behind, and measure
        // (one file open at a time).
        for index in results.indices {
            if let error = state.error(of: index), results[index].error == nil { results[index].error = error }
            results[index].bytesRead = state.bytesRead(of: index)
            guard plan.results[index].error == nil, let (file, _) = try? RegularFile.openForProbing(results[index].path)
            else { continue }
            if options.destination == .disk { try? file.advise(POSIX_FADV_DONTNEED) }
            let size = results[index].size
            if Residency.isFullyCached(file.fd, size: size, method: options.residencyMethod) {
                results[index].residentAfter = size
            } else if let probe = try? ResidencyProbe(
                file: file, size: results[index].size, preferred: options.residencyMethod)
            {
                results[index].residentAfter = probe.residentBytes()
            }
        }

        let seconds = Monotonic.now() - plan.started
        let bytesRead = results.reduce(0) { $0 + $1.bytesRead }
        let measured = results.filter { $0.residentAfter != nil && $0.error == nil }
        let measuredSize = measured.reduce(0) { $0 + $1.size }
        let measuredResident = measured.reduce(0) { $0 + ($1.residentAfter ?? 0) }
        return WarmReport(
            files: results,
            bytesRead: bytesRead,
            bytesAlreadyResident: results.reduce(0) { $0 + $1.bytesAlreadyResident },
            totalSize: results.reduce(0) { $0 + $1.size },
            seconds: seconds,
            throughput: seconds > 0 ? Double(bytesRead) / seconds : 0,
            residencyPercent: measured.isEmpty ? nil : Residency.percent(measuredResident, of: measuredSize),
            strategies: plan.strategies)
    }

    /// One group's readers, started and waited for.
    private static func read(
        _ group: PlanGroup, paths: [String], state: FileTallies, destination: WarmDestination, hint: ReadaheadHint,
        progress: ProgressBar?
    ) {
        let work = WorkList(chunks: group.regions)
        let files = LazyFiles(paths: paths, chunks: group.regions)
        let workers = min(group.strategy.jobs, max(1, group.regions.count))
        let strategy = group.strategy
        let worker: @Sendable () -> Void = {
            Self.runWorker(
                work: work, files: files, state: state, strategy: strategy, workers: workers,
                destination: destination, hint: hint, progress: progress)
        }
        let done = DispatchGroup()
        var started = 0
        for _ in 0..<workers {
            done.enter()
            do {
                try startThread("cachectl-warm", stackSize: 1 << 20) {
                    defer { done.leave() }
                    worker()
                }
                started += 1
            } catch {
                done.leave()  // fewer readers: the work list is shared, the others take it
            }
        }
        if started == 0 { worker() }  // no thread at all (RLIMIT_NPROC): read on this one
        done.wait()
    }

    private static func runWorker(
        work: WorkList, files: LazyFiles, state: FileTallies, strategy: ReadStrategy, workers: Int,
        destination: WarmDestination, hint: ReadaheadHint, progress: ProgressBar?
    ) {
        let reader = ChunkReader(chunkSize: Int(strategy.chunkSize), transfer: strategy.transfer)
        let contiguous = strategy.layout == .contiguous
        var previous: (file: OpenFile, chunk: Chunk)?
        while let (position, region) = work.next() {
            defer { files.finished(region.file) }
            guard !state.hasFailed(region.file) else { continue }
            let file: OpenFile
            do {
                file = contiguous ? try RegularFile.open(files.path(region.file)) : try files.acquire(region.file)
            } catch {
                state.fail(region.file, error.description)
                continue
            }
            if strategy.hints {
                if contiguous {
                    try? file.advise(POSIX_FADV_SEQUENTIAL)
                } else if let ahead = work.chunk(at: position + workers), let aheadFile = files.ifOpen(ahead.file) {
                    hint.willNeed(fd: aheadFile.fd, offset: Int64(ahead.offset), length: Int64(ahead.length))
                }
            }
            progress?.setItem(Path.lastComponent(of: file.path))
            let end = region.offset + region.length
            var offset = region.offset
            do {
                while offset < end {
                    let piece = Chunk(file: region.file, offset: offset, length: min(strategy.chunkSize, end - offset))
                    let next = piece.offset + piece.length
                    if contiguous && strategy.hints && next < end {
                        hint.willNeed(
                            fd: file.fd, offset: Int64(next), length: Int64(min(strategy.chunkSize, end - next)))
                    }
                    try reader.read(piece, of: file) { bytes in
                        state.addRead(piece.file, bytes)
                        progress?.add(bytes)
                    }
                    // --into disk: drop the piece behind the one just read. Pages FS-Cache
                    // is still writing are kept by the kernel; a final pass drops them later.
                    if destination == .disk {
                        if let previous {
                            try? previous.file.advise(
                                POSIX_FADV_DONTNEED, offset: Int64(previous.chunk.offset),
                                length: Int64(previous.chunk.length))
                        }
                        previous = (file, piece)
                    }
                    offset = next
                }
            } catch {
                state.fail(region.file, error.description)
                continue
            }
        }
    }
}

/// Brings a piece of a file into the page cache (``ReadTransfer``): with pread(2)
/// into the reader's buffer, allocated once per reader (its pages are touched once,
/// not per chunk); mapped and faulted in; or spliced through a pipe of the reader's
/// own to /dev/null. Mapping and splicing fall back to copying where the kernel or
/// the file cannot.
struct ChunkReader: ~Copyable {
    private let buffer: UnsafeMutableRawBufferPointer
    private let transfer: ReadTransfer
    /// Splicing: /dev/null open for writing, the pipe's ends and its size in bytes;
    /// all -1 (and 0) when not splicing or when either cannot be opened.
    private let sink: Int32
    private let pipeRead: Int32
    private let pipeWrite: Int32
    private let pipeSize: Int

    /// The largest pipe a reader asks for: 16 MiB, the largest piece any default reads.
    static let largestPipe = 16 << 20

    init(chunkSize: Int, transfer: ReadTransfer) {
        self.transfer = transfer
        var sink: Int32 = -1
        var ends: [Int32] = [-1, -1]
        var pipeSize = 0
        if transfer == .splice {
            sink = open("/dev/null", O_WRONLY | O_CLOEXEC)
            // The pipe's size is the most one splice(2) asks the file for: sized to
            // the piece, the file's readahead sees requests as large as pread's.
            let size = sink >= 0 ? cachectl_pipe(&ends, UInt(min(chunkSize, Self.largestPipe))) : -1
            if size > 0 {
                pipeSize = size
            } else if sink >= 0 {
                close(sink)
                sink = -1
            }
        }
        self.sink = sink
        (pipeRead, pipeWrite) = (ends[0], ends[1])
        self.pipeSize = pipeSize
        // A buffer only where copying may happen (splicing without a pipe copies).
        let copies = transfer == .copy || (transfer == .splice && sink < 0)
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: copies ? chunkSize : 0, alignment: 4096)
    }

    deinit {
        buffer.deallocate()
        for fd in [sink, pipeRead, pipeWrite] where fd >= 0 { close(fd) }
    }

    /// `chunk.length` must not exceed the chunk size the reader was made for.
    func read(_ chunk: Chunk, of file: OpenFile, progress: (UInt64) -> Void) throws(CachectlError) {
        var done: UInt64 = 0
        switch transfer {
        case .map:
            if try populate(chunk, of: file) {
                progress(chunk.length)
                return
            }
        case .splice where sink >= 0:
            done = try splice(chunk, of: file, progress: progress)
            if done == chunk.length { return }
        case .copy, .splice:
            break
        }
        // Copying, or what mapping or splicing could not do (no MADV_POPULATE_READ
        // before Linux 5.14, a file that cannot be mapped or spliced): through a
        // buffer of this piece's size where the reader has none.
        if buffer.count >= Int(chunk.length) {
            try Self.copy(chunk, from: done, of: file, into: buffer, progress: progress)
        } else {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(chunk.length), alignment: 4096)
            defer { scratch.deallocate() }
            try Self.copy(chunk, from: done, of: file, into: scratch, progress: progress)
        }
    }

    /// pread(2) of the piece from `done` bytes into it on.
    private static func copy(
        _ chunk: Chunk, from done: UInt64, of file: OpenFile, into buffer: UnsafeMutableRawBufferPointer,
        progress: (UInt64) -> Void
    ) throws(CachectlError) {
        var done = done
        while done < chunk.length {
            let offset = chunk.offset + done
            let n = retryingEINTR { pread(file.fd, buffer.baseAddress, Int(chunk.length - done), off_t(offset)) }
            if n < 0 {
                let code = errno
                throw CachectlError("read at offset \(offset)", errno: code)
            }
            if n == 0 { throw Self.shrank(file, expected: offset) }
            done += UInt64(n)
            progress(UInt64(n))
        }
    }

    /// The piece spliced into the pipe and on to /dev/null, a pipe's size at a time;
    /// the bytes moved. Fewer than the piece's only when this file cannot be spliced
    /// (EINVAL, ENOSYS): the caller copies the rest.
    private func splice(_ chunk: Chunk, of file: OpenFile, progress: (UInt64) -> Void) throws(CachectlError) -> UInt64 {
        var done: UInt64 = 0
        while done < chunk.length {
            var offset = Int64(chunk.offset + done)
            let want = UInt(min(chunk.length - done, UInt64(pipeSize)))
            let n = cachectl_splice_through(file.fd, &offset, want, pipeRead, pipeWrite, sink)
            if n < 0 {
                let code = errno
                if code == EINVAL || code == ENOSYS { return done }
                throw CachectlError("read at offset \(chunk.offset + done) (splice)", errno: code)
            }
            if n == 0 { throw Self.shrank(file, expected: chunk.offset + done) }
            done += UInt64(n)
            progress(UInt64(n))
        }
        return done
    }

    /// The file ended before `offset`: it shrank since it was measured.
    static func shrank(_ file: OpenFile, expected offset: UInt64) -> CachectlError {
        let now = (try? file.status()).map { UInt64($0.st_size) }
        return CachectlError(
            .conflict,
            "file shrank while being warmed: expected data at offset \(offset), file is now "
                + (now.map { "\($0) bytes" } ?? "unreadable") + "; warm it again when it is complete")
    }

    /// Maps the piece (from the page boundary below it) and faults every page in
    /// (MADV_POPULATE_READ, Linux 5.14): the kernel reads what is missing, with
    /// readahead, and waits for it. False when this kernel or file cannot do it, or
    /// a page could not be read (the caller reads instead).
    private func populate(_ chunk: Chunk, of file: OpenFile) throws(CachectlError) -> Bool {
        let page = UInt64(cachectl_page_size())
        let start = chunk.offset / page * page
        let length = Int(chunk.offset + chunk.length - start)
        guard let address = mmap(nil, length, PROT_READ, MAP_SHARED, file.fd, off_t(start)),
            address != MAP_FAILED
        else { return false }
        defer { munmap(address, length) }
        if madvise(address, length, MADV_POPULATE_READ) == 0 { return true }
        switch errno {
        case EINVAL: return false
        case EFAULT:
            // SIGBUS on a page: past the end of a file that shrank, or an I/O error,
            // which reading the piece names (with its errno and offset).
            let size = (try? file.status()).map { UInt64($0.st_size) } ?? 0
            if size < chunk.offset + chunk.length { throw Self.shrank(file, expected: chunk.offset + chunk.length - 1) }
            return false
        case let code: throw CachectlError("read at offset \(chunk.offset) (mapped)", errno: code)
        }
    }
}

/// What ``Prewarmer/plan(_:)`` found: per-file state and sources, and the work still
/// to do, grouped by strategy.
public struct WarmPlan: Sendable {
    let started: Double
    /// Per file: size now, bytes already resident, source, or why it cannot be warmed.
    public let results: [FileWarmResult]
    let groups: [PlanGroup]
    /// The strategy chosen for each source met, in order.
    public let strategies: [SourceStrategy]

    /// Bytes the run will read.
    public var bytesToRead: UInt64 { groups.reduce(0) { $0 + $1.regions.reduce(0) { $0 + $1.length } } }

    /// The most readers any group will start.
    public var readers: Int { groups.map { min($0.strategy.jobs, $0.regions.count) }.max() ?? 0 }
}

/// Files read with one strategy: their work items in file order (chunks when
/// interleaved, regions when contiguous).
struct PlanGroup: Sendable {
    var strategy: ReadStrategy
    var regions: [Chunk]
}

struct Chunk: Sendable {
    var file: Int
    var offset: UInt64
    var length: UInt64
}

/// The chunks to read, handed out in order to whichever worker asks next.
final class WorkList: Sendable {
    private let chunks: [Chunk]
    private let nextIndex = Mutex(0)

    init(chunks: [Chunk]) { self.chunks = chunks }

    func next() -> (Int, Chunk)? {
        nextIndex.withLock { next in
            guard next < chunks.count else { return nil }
            defer { next += 1 }
            return (next, chunks[next])
        }
    }

    func chunk(at position: Int) -> Chunk? {
        position < chunks.count ? chunks[position] : nil
    }
}

/// Per-file counters and failures shared by the workers.
final class FileTallies: Sendable {
    private struct Files {
        var read: [UInt64]
        var errors: [String?]
    }
    private let files: Mutex<Files>

    init(fileCount: Int) {
        files = Mutex(
            Files(read: Array(repeating: 0, count: fileCount), errors: Array(repeating: nil, count: fileCount)))
    }

    func addRead(_ file: Int, _ bytes: UInt64) { files.withLock { $0.read[file] += bytes } }
    func bytesRead(of file: Int) -> UInt64 { files.withLock { $0.read[file] } }
    func fail(_ file: Int, _ message: String) {
        files.withLock { if $0.errors[file] == nil { $0.errors[file] = message } }
    }
    func hasFailed(_ file: Int) -> Bool { files.withLock { $0.errors[file] != nil } }
    func error(of file: Int) -> String? { files.withLock { $0.errors[file] } }
}

/// The files of a run, opened when a worker first needs one and closed when its last
/// chunk is done (chunks of a file are handed out consecutively). Opening happens
/// outside the lock; other workers needing the same file wait for it.
final class LazyFiles: @unchecked Sendable {
    private enum Slot {
        case closed
        case opening
        case open(OpenFile)
        case failed(CachectlError)
    }

    private let condition = Condition()
    private let paths: [String]
    private var slots: [Slot]
    private var remaining: [Int]

    init(paths: [String], chunks: [Chunk]) {
        self.paths = paths
        slots = Array(repeating: .closed, count: paths.count)
        remaining = Array(repeating: 0, count: paths.count)
        for chunk in chunks { remaining[chunk.file] += 1 }
    }

    /// The open file, opening it first if no worker has yet.
    func acquire(_ index: Int) throws(CachectlError) -> OpenFile {
        condition.lock()
        while true {
            switch slots[index] {
            case .open(let file):
                condition.unlock()
                return file
            case .failed(let error):
                condition.unlock()
                throw error
            case .opening:
                condition.wait()
            case .closed:
                slots[index] = .opening
                condition.unlock()
                let result: Result<OpenFile, CachectlError>
                do throws(CachectlError) { result = .success(try RegularFile.open(paths[index])) } catch {
                    result = .failure(error)
                }
                condition.lock()
                switch result {
                case .success(let file): slots[index] = remaining[index] > 0 ? .open(file) : .closed
                case .failure(let error): slots[index] = .failed(error)
                }
                condition.broadcast()
                condition.unlock()
                return try result.get()
            }
        }
    }

    func path(_ index: Int) -> String { paths[index] }

    /// The file if it is open now; never opens.
    func ifOpen(_ index: Int) -> OpenFile? {
        condition.lock()
        defer { condition.unlock() }
        if case .open(let file) = slots[index] { return file }
        return nil
    }

    /// One chunk of `index` is done (read, failed or skipped); the last one closes it
    /// (the descriptor closes when the workers still holding it let go).
    func finished(_ index: Int) {
        condition.lock()
        defer { condition.unlock() }
        remaining[index] -= 1
        if remaining[index] == 0, case .open = slots[index] { slots[index] = .closed }
    }
}
