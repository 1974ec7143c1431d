import CachectlSystem
import CachectlWarm
import Foundation
import Glibc
import Testing

/// Issue 13, class 6: files swapped for FIFOs, sparse files.
@Suite struct WarmHardeningTests {
    let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory() }

    /// Replaces `path` by a FIFO, and unblocks any open(2) still waiting on it after
    /// `seconds` (so the old, blocking code fails the test instead of hanging it).
    func swapForFIFO(_ path: String, unblockAfter seconds: Double) -> Thread {
        unlink(path)
        mkfifo(path, 0o644)
        let watchdog = Thread {
            Thread.sleep(forTimeInterval: seconds)
            let fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 {
                Thread.sleep(forTimeInterval: 0.2)
                close(fd)
            }
        }
        watchdog.start()
        return watchdog
    }

    @Test func aFileSwappedForAFIFOAfterSelectionIsRefusedWithoutBlocking() throws {
        let intact = try scratch.file("a.gguf", size: 1 << 20, seed: 1)
        let swapped = try scratch.file("b.gguf", size: 1 << 20, seed: 2)
        let selection = FileSelection(paths: [intact, swapped])
        #expect(selection.files.count == 2)
        _ = swapForFIFO(swapped, unblockAfter: 5)

        let started = Monotonic.now()
        let report = Prewarmer(options: WarmOptions(jobs: 2, chunkSize: 1 << 20)).warm(selection.files)
        #expect(Monotonic.now() - started < 4, "open(2) blocked on the FIFO")
        let refused = try #require(report.files.first { $0.path == swapped })
        #expect(refused.error?.contains("FIFO") == true)
        #expect(report.files.first { $0.path == intact }?.residentAfter == 1 << 20)
        #expect(FileResidency.measure(selection.files[1]).error?.contains("FIFO") == true)
        unlink(swapped)
    }

    @Test func aFileSwappedForAFIFOAfterThePlanIsRefusedWithoutBlocking() throws {
        let swapped = try scratch.file("c.gguf", size: 2 << 20, seed: 3)
        let warmer = Prewarmer(options: WarmOptions(jobs: 2, chunkSize: 1 << 20))
        let plan = warmer.plan(FileSelection(paths: [swapped]).files)
        #expect(plan.bytesToRead == 2 << 20)
        _ = swapForFIFO(swapped, unblockAfter: 5)

        let started = Monotonic.now()
        let report = warmer.run(plan)
        #expect(Monotonic.now() - started < 4, "open(2) blocked on the FIFO")
        #expect(report.files[0].error?.contains("FIFO") == true)
        #expect(report.bytesRead == 0)
        unlink(swapped)
    }

    /// A 100 GiB file with 1 MiB of data in the middle: warm reads the 1 MiB only,
    /// counts the holes as resident, and a second run reads nothing.
    @Test func holesAreSkippedAndCountAsResident() throws {
        let path = scratch.path + "/sparse.gguf"
        let size: Int64 = 100 << 30
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        #expect(ftruncate(fd, off_t(size)) == 0)
        let data = [UInt8](repeating: 0x5a, count: 1 << 20)
        #expect(data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(50 << 30)) } == 1 << 20)
        close(fd)
        try scratch.evict(path)

        let selection = FileSelection(paths: [path])
        let before = FileResidency.measure(selection.files[0])
        #expect(before.resident == UInt64(size) - (1 << 20))

        let warmer = Prewarmer(options: WarmOptions(jobs: 4, chunkSize: 1 << 20))
        let started = Monotonic.now()
        let report = warmer.warm(selection.files)
        #expect(Monotonic.now() - started < 10)
        #expect(report.failedFiles == 0)
        #expect(report.bytesRead == 1 << 20)
        #expect(report.bytesAlreadyResident == UInt64(size) - (1 << 20))
        #expect(report.residencyPercent == 100)

        let again = warmer.warm(selection.files)
        #expect(again.bytesRead == 0)
        #expect(again.bytesAlreadyResident == UInt64(size))
        #expect(FileResidency.measure(selection.files[0]).percent == 100)
        #expect(FileResidency.measure(selection.files[0], method: .mincore).percent == 100)
    }
}
