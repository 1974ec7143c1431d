import CachectlSystem
import CachectlWarm
import Foundation
import Glibc
import Testing

/// Real page-cache tests: files on a disk filesystem, evicted with DONTNEED, warmed,
/// and measured with both residency methods.
@Suite struct PrewarmerTests {
    let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory() }

    static let methods: [ResidencyMethod] = Kernel.hasCachestat ? [.cachestat, .mincore] : [.mincore]

    /// Read into buffers, mapped and faulted in, or spliced to /dev/null.
    @Test(arguments: methods, ReadTransfer.allCases)
    func warmsEvictedFilesToFullResidency(method: ResidencyMethod, transfer: ReadTransfer) throws {
        let a = try scratch.file("model-00001-of-00002.gguf", size: 9 << 20 + 123, seed: 1)
        try scratch.file("model-00002-of-00002.gguf", size: 3 << 20, seed: 2)
        let selection = FileSelection(paths: [a])
        #expect(selection.files.count == 2)
        #expect(FileResidency.measure(selection.files[0], method: method).resident == 0)

        let warmer = Prewarmer(
            options: WarmOptions(jobs: 4, chunkSize: 1 << 20, residencyMethod: method, transfer: transfer))
        let report = warmer.warm(selection.files)
        #expect(report.failedFiles == 0)
        #expect(report.bytesRead == selection.totalSize)
        #expect(report.bytesAlreadyResident == 0)
        #expect(report.residencyPercent == 100)
        for file in selection.files {
            let residency = FileResidency.measure(file, method: method)
            #expect(residency.method == method)
            #expect(residency.resident == file.size)
        }
    }

    @Test(arguments: methods)
    func readsOnlyWhatIsNotResident(method: ResidencyMethod) throws {
        let path = try scratch.file("partial.gguf", size: 8 << 20)
        // Make exactly the first 3 MiB resident: read it all, then drop the rest.
        let file = try OpenFile(path)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        _ = try file.read(into: buffer, at: 0)
        try file.advise(POSIX_FADV_DONTNEED, offset: 3 << 20, length: 5 << 20)

        let warmer = Prewarmer(options: WarmOptions(jobs: 2, chunkSize: 1 << 20, residencyMethod: method))
        let selection = FileSelection(paths: [path])
        let report = warmer.warm(selection.files)
        #expect(report.bytesAlreadyResident == 3 << 20)
        #expect(report.bytesRead == 5 << 20)
        #expect(report.residencyPercent == 100)

        let again = warmer.warm(selection.files)
        #expect(again.bytesRead == 0)
        #expect(again.bytesAlreadyResident == 8 << 20)
    }

    @Test(arguments: methods)
    func evictReleasesWhatWasResident(method: ResidencyMethod) throws {
        let path = try scratch.file("evict.gguf", size: 4 << 20)
        let selection = FileSelection(paths: [path])
        _ = Prewarmer(options: WarmOptions(jobs: 2, chunkSize: 1 << 20, residencyMethod: method)).warm(selection.files)
        let eviction = Evictor.evict(selection.files[0], method: method)
        #expect(eviction.error == nil)
        #expect(eviction.residentBefore == 4 << 20)
        #expect(eviction.residentAfter == 0)
        #expect(eviction.released == 4 << 20)
    }

    @Test func adviseAheadWarmsFullyToo() throws {
        let path = try scratch.file("hinted.gguf", size: 6 << 20)
        let warmer = Prewarmer(options: WarmOptions(jobs: 3, chunkSize: 1 << 20, adviseAhead: true))
        let report = warmer.warm(FileSelection(paths: [path]).files)
        #expect(report.bytesRead == 6 << 20)
        #expect(report.residencyPercent == 100)
    }

    @Test func intoDiskLeavesLittleInRAM() throws {
        let path = try scratch.file("stage.gguf", size: 16 << 20)
        let warmer = Prewarmer(options: WarmOptions(jobs: 2, chunkSize: 1 << 20, destination: .disk))
        let report = warmer.warm(FileSelection(paths: [path]).files)
        #expect(report.bytesRead == 16 << 20)
        #expect(report.failedFiles == 0)
        #expect((report.files[0].residentAfter ?? .max) < 2 << 20)
    }

    /// Read into a buffer, mapped and faulted in (past the new end: EFAULT), or
    /// spliced (past the new end: splice returns 0).
    @Test(arguments: ReadTransfer.allCases)
    func aFileTruncatedWhileWarmingFailsAndTheOthersAreWarmed(transfer: ReadTransfer) throws {
        let shrinking = try scratch.file("a-shrinking.gguf", size: 8 << 20, seed: 3)
        let intact = try scratch.file("b-intact.gguf", size: 2 << 20, seed: 4)
        let warmer = Prewarmer(options: WarmOptions(jobs: 2, chunkSize: 1 << 20, transfer: transfer))
        let plan = warmer.plan(FileSelection(paths: [shrinking, intact]).files)
        #expect(plan.bytesToRead == 10 << 20)
        #expect(truncate(shrinking, 3 << 20) == 0)

        let report = warmer.run(plan)
        #expect(report.failedFiles == 1)
        let failed = try #require(report.files.first { $0.path == shrinking })
        #expect(failed.error?.contains("shrank") == true)
        let ok = try #require(report.files.first { $0.path == intact })
        #expect(ok.error == nil)
        #expect(ok.residentAfter == 2 << 20)
    }

    @Test func missingFilesAreReportedPerFile() throws {
        let present = try scratch.file("present.gguf", size: 1 << 20)
        let gone = try scratch.file("gone.gguf", size: 1 << 20)
        let selection = FileSelection(paths: [present, gone])
        unlink(gone)
        let report = Prewarmer(options: WarmOptions(jobs: 2, chunkSize: 1 << 20)).warm(selection.files)
        #expect(report.files.map { $0.error == nil } == [true, false])
        #expect(report.files[1].error?.contains("ENOENT") == true)
        #expect(report.files[0].residentAfter == 1 << 20)
    }

    @Test func emptyFilesAreFullyResident() throws {
        let path = try scratch.file("empty.gguf", size: 0)
        let report = Prewarmer().warm(FileSelection(paths: [path]).files)
        #expect(report.failedFiles == 0)
        #expect(report.residencyPercent == 100)
    }

    @Test(arguments: [
        (WarmOptions(jobs: 0), "--jobs"), (WarmOptions(jobs: 257), "--jobs"),
        (WarmOptions(chunkSize: 1000), "--chunk"), (WarmOptions(chunkSize: (64 << 10) + 1), "page size"),
        (WarmOptions(chunkSize: 2 << 30), "--chunk"),
    ])
    func invalidOptionsAreNamed(options: WarmOptions, mentions: String) {
        #expect { try options.validate() } throws: { "\($0)".contains(mentions) }
    }

    @Test func defaultOptionsAreValid() {
        #expect(throws: Never.self) { try WarmOptions().validate() }
    }
}
