import CCachectlShims
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

/// Tuning of the parallel reader. Defaults come from measurements recorded in README.md.
public struct WarmOptions: Sendable, Equatable {
    /// Reader threads.
    public var jobs: Int
    /// Bytes each read covers; a multiple of the page size.
    public var chunkSize: UInt64
    public var destination: WarmDestination
    public var residencyMethod: ResidencyMethod
    /// posix_fadvise hints: SEQUENTIAL on each file and WILLNEED for the chunk `jobs`
    /// places ahead of the readers. Off by default: on a local disk they made 16
    /// parallel readers slower (SEQUENTIAL doubles readahead, so the readers fetch
    /// each other's chunks), see README.md. They may help on high-latency shares.
    public var adviseAhead: Bool

    public static let defaultJobs = 16
    public static let defaultChunkSize: UInt64 = 2 << 20
    public static let jobsRange = 1...256
    public static let chunkRange: ClosedRange<UInt64> = (64 << 10)...(1 << 30)

    public init(
        jobs: Int = defaultJobs, chunkSize: UInt64 = defaultChunkSize,
        destination: WarmDestination = .ram, residencyMethod: ResidencyMethod = .auto, adviseAhead: Bool = false
    ) {
        self.jobs = jobs
        self.chunkSize = chunkSize
        self.destination = destination
        self.residencyMethod = residencyMethod
        self.adviseAhead = adviseAhead
    }

    /// Nil when valid, else what is wrong, naming the option.
    public func validationError() -> String? {
        if !Self.jobsRange.contains(jobs) {
            return "--jobs must be between \(Self.jobsRange.lowerBound) and \(Self.jobsRange.upperBound), got \(jobs)"
        }
        if !Self.chunkRange.contains(chunkSize) {
            return "--chunk must be between 64K and 1G, got \(ByteSize.format(chunkSize))"
        }
        if chunkSize % UInt64(cachectl_page_size()) != 0 {
            return "--chunk must be a multiple of the page size (\(cachectl_page_size()) bytes), got \(chunkSize)"
        }
        return nil
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
    public var failedFiles: Int { files.filter { $0.error != nil }.count }
}

/// Reads files into the page cache with parallel `pread` workers over fixed-size
/// chunks, skipping chunks that are already resident.
///
/// Workers are threads of our own (blocking reads must not run on Swift's
/// cooperative pool). With `adviseAhead`, each file gets POSIX_FADV_SEQUENTIAL and
/// each claimed chunk a POSIX_FADV_WILLNEED for the chunk `jobs` positions ahead.
public struct Prewarmer: Sendable {
    public var options: WarmOptions

    public init(options: WarmOptions = WarmOptions()) {
        self.options = options
    }

    /// Plans and reads: ``plan(_:)`` then ``run(_:progress:)``.
    public func warm(_ files: [SelectedFile], progress: ProgressBar? = nil) -> WarmReport {
        run(plan(files), progress: progress)
    }

    /// Opens each file in turn (closing it again: nothing stays open between plan and
    /// run, so any number of files fits under RLIMIT_NOFILE), sizes it now (it may have
    /// changed since selection), and lists the chunks of its data ranges that are not
    /// yet resident. Holes are never read: they count as already resident. Reads no data.
    public func plan(_ files: [SelectedFile]) -> WarmPlan {
        let start = Monotonic.now()
        var results = files.map { FileWarmResult(path: $0.path, size: $0.size) }
        var chunks: [Chunk] = []

        for (index, selected) in files.enumerated() {
            do {
                let (file, st) = try RegularFile.openForProbing(selected.path)
                let size = UInt64(st.st_size)
                results[index].size = size
                if options.residencyMethod != .mincore, let pages = Residency.cachedPages(file.fd, size: size),
                   pages >= Residency.pages(size) {
                    results[index].bytesAlreadyResident = size  // all cached: one cachestat, no hole walk
                    continue
                }
                let probe = try ResidencyProbe(file: file, size: size, preferred: options.residencyMethod)
                let resident = probe.residentBytes() ?? 0
                if resident >= size {
                    results[index].bytesAlreadyResident = size
                    continue
                }
                var covered: UInt64 = 0
                for range in probe.dataRanges {
                    var offset = range.lowerBound
                    while offset < range.upperBound {
                        let length = min(options.chunkSize, range.upperBound - offset)
                        // A chunk is skipped only when every page of it is resident.
                        if resident > 0, let chunkResident = probe.residentBytes(offset: offset, length: length),
                           chunkResident >= length {
                            results[index].bytesAlreadyResident += length
                        } else {
                            chunks.append(Chunk(file: index, offset: offset, length: length))
                        }
                        offset += length
                    }
                    covered += range.upperBound - range.lowerBound
                }
                results[index].bytesAlreadyResident += size - min(size, covered)
            } catch {
                results[index].error = error.description
            }
        }

        return WarmPlan(started: start, results: results, chunks: chunks)
    }

    /// Reads the planned chunks with `options.jobs` threads, then measures residency.
    /// A file is opened when the first worker reaches one of its chunks and closed
    /// after its last chunk, so at most about `jobs` files are open at once.
    public func run(_ plan: WarmPlan, progress: ProgressBar? = nil) -> WarmReport {
        var results = plan.results
        let chunks = plan.chunks
        let state = WarmState(fileCount: results.count)
        let work = WorkList(chunks: chunks)
        let openFiles = LazyFiles(paths: results.map(\.path), chunks: chunks)
        let workers = min(options.jobs, max(1, chunks.count))
        let chunkSize = Int(options.chunkSize)
        let destination = options.destination
        let lookahead = options.adviseAhead ? workers : 0
        let worker: @Sendable () -> Void = {
            Self.runWorker(
                work: work, files: openFiles, state: state, chunkSize: chunkSize,
                lookahead: lookahead, destination: destination, progress: progress)
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
        progress?.finish()

        // Record per-file outcomes, drop what --into disk left behind, and measure
        // (one file open at a time).
        for index in results.indices {
            if let error = state.error(of: index), results[index].error == nil { results[index].error = error }
            results[index].bytesRead = state.bytesRead(of: index)
            guard plan.results[index].error == nil, let (file, _) = try? RegularFile.openForProbing(results[index].path) else { continue }
            if destination == .disk { try? file.advise(POSIX_FADV_DONTNEED) }
            let size = results[index].size
            if options.residencyMethod != .mincore, let pages = Residency.cachedPages(file.fd, size: size),
               pages >= Residency.pages(size) {
                results[index].residentAfter = size
            } else if let probe = try? ResidencyProbe(file: file, size: results[index].size, preferred: options.residencyMethod) {
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
            residencyPercent: measured.isEmpty ? nil : Residency.percent(measuredResident, of: measuredSize))
    }

    private static func runWorker(
        work: WorkList, files: LazyFiles, state: WarmState, chunkSize: Int, lookahead: Int,
        destination: WarmDestination, progress: ProgressBar?
    ) {
        let reader = ChunkReader(chunkSize: chunkSize)
        var previous: Chunk?
        while let (position, chunk) = work.next() {
            defer { files.finished(chunk.file) }
            guard !state.hasFailed(chunk.file) else { continue }
            let file: OpenFile
            do {
                file = try files.acquire(chunk.file)
            } catch {
                state.fail(chunk.file, error.description)
                continue
            }
            if lookahead > 0, let ahead = work.chunk(at: position + lookahead), let aheadFile = files.ifOpen(ahead.file) {
                try? aheadFile.advise(POSIX_FADV_WILLNEED, offset: Int64(ahead.offset), length: Int64(ahead.length))
            }
            progress?.setItem(Path.lastComponent(of: file.path))
            do {
                try reader.read(chunk, of: file) { bytes in
                    state.addRead(chunk.file, bytes)
                    progress?.add(bytes)
                }
            } catch {
                state.fail(chunk.file, error.description)
                continue
            }
            // --into disk: drop the chunk behind the one just read. Pages FS-Cache is
            // still writing are kept by the kernel; a final pass drops them later.
            if destination == .disk {
                if let previous, let previousFile = files.ifOpen(previous.file) {
                    try? previousFile.advise(POSIX_FADV_DONTNEED, offset: Int64(previous.offset), length: Int64(previous.length))
                }
                previous = chunk
            }
        }
    }
}

/// Brings a chunk into the page cache with pread(2) into a buffer of its own.
/// (sendfile(2) to /dev/null avoids the copy to user space, but measured slower on
/// cold data: it reads through a 64 KiB pipe, so readahead sees small requests.)
struct ChunkReader: ~Copyable {
    private let buffer: UnsafeMutableRawBufferPointer

    init(chunkSize: Int) {
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 4096)
    }

    deinit { buffer.deallocate() }

    func read(_ chunk: Chunk, of file: OpenFile, progress: (UInt64) -> Void) throws(WarmError) {
        var done: UInt64 = 0
        while done < chunk.length {
            let offset = chunk.offset + done
            let n = retryingEINTR { pread(file.fd, buffer.baseAddress, Int(chunk.length - done), off_t(offset)) }
            if n < 0 {
                let code = errno
                throw WarmError("read at offset \(offset): \(Errno.message(code)) (\(Errno.name(code)))")
            }
            if n == 0 {
                let now = (try? file.status()).map { UInt64($0.st_size) }
                throw WarmError(
                    "file shrank while being warmed: expected data at offset \(offset), file is now "
                        + (now.map { "\($0) bytes" } ?? "unreadable") + "; warm it again when it is complete")
            }
            done += UInt64(n)
            progress(UInt64(n))
        }
    }
}

/// What ``Prewarmer/plan(_:)`` found: per-file state and the chunks still to read.
public struct WarmPlan: Sendable {
    let started: Double
    /// Per file: size now, bytes already resident, or why it cannot be warmed.
    public let results: [FileWarmResult]
    let chunks: [Chunk]

    /// Bytes the run will read.
    public var bytesToRead: UInt64 { chunks.reduce(0) { $0 + $1.length } }
}

struct WarmError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
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
final class WarmState: Sendable {
    private struct Files {
        var read: [UInt64]
        var errors: [String?]
    }
    private let files: Mutex<Files>

    init(fileCount: Int) {
        files = Mutex(Files(read: Array(repeating: 0, count: fileCount), errors: Array(repeating: nil, count: fileCount)))
    }

    func addRead(_ file: Int, _ bytes: UInt64) { files.withLock { $0.read[file] += bytes } }
    func bytesRead(of file: Int) -> UInt64 { files.withLock { $0.read[file] } }
    func fail(_ file: Int, _ message: String) { files.withLock { if $0.errors[file] == nil { $0.errors[file] = message } } }
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
        case failed(SystemError)
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
    func acquire(_ index: Int) throws(SystemError) -> OpenFile {
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
                let result: Result<OpenFile, SystemError>
                do throws(SystemError) { result = .success(try RegularFile.open(paths[index])) } catch { result = .failure(error) }
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
