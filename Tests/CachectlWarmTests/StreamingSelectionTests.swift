import CachectlSystem
import CachectlWarm
import Foundation
import Glibc
import Testing

/// FileSelection.forEach (the streamed walk `residency` uses) and measuring a file the
/// walk opened.
@Suite struct StreamingSelectionTests {
    let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory() }

    @Test func forEachSelectsWhatTheListSelectsInTheSameOrder() throws {
        for name in ["m/b.gguf", "m/a.gguf", "m/sub/c.safetensors", "m/sub/d.txt", "m/z/e.gguf"] {
            try scratch.file(name, size: 100)
        }
        symlink(scratch.path + "/m/a.gguf", scratch.path + "/m/sub/link-to-a.gguf")
        link(scratch.path + "/m/b.gguf", scratch.path + "/m/z/hard-b.gguf")
        let paths = [scratch.path + "/m", scratch.path + "/m/a.gguf", scratch.path + "/missing"]
        for (include, exclude) in [([String](), [String]()), (["*.gguf"], []), ([], ["sub/*"])] {
            let list = FileSelection(paths: paths, include: include, exclude: exclude)
            for opening in [false, true] {
                var streamed: [SelectedFile] = []
                let rest = FileSelection.forEach(paths: paths, include: include, exclude: exclude, opening: opening) {
                    file, _ in
                    streamed.append(file)
                }
                #expect(streamed == list.files)
                #expect(rest.files.isEmpty)
                #expect(rest.problems == list.problems)
                #expect(rest.skipped == list.skipped)
            }
        }
        // Each file once: the symlink and the hard link are the same files as a.gguf and b.gguf.
        let all = FileSelection(paths: [scratch.path + "/m"]).files.map { Path.lastComponent(of: $0.path) }
        #expect(all == ["a.gguf", "b.gguf", "c.safetensors", "d.txt", "e.gguf"])
    }

    @Test func openingHandsOutEachDirectoryEntryOpenOneAtATime() throws {
        for index in 0..<50 { try scratch.file("t/d\(index % 5)/f\(index)", size: 4096) }
        let named = try scratch.file("named.bin", size: 10)
        var openCount = 0
        var namedWasOpen = true
        weak var previous: OpenFile?
        _ = FileSelection.forEach(paths: [scratch.path + "/t", named], opening: true) { file, opened in
            // The previous file was closed (its OpenFile released) before this one came.
            #expect(previous == nil)
            if file.path == named {
                namedWasOpen = opened != nil
                return
            }
            guard let opened else { return }
            openCount += 1
            var st = stat()
            #expect(fstat(opened.fd, &st) == 0)
            #expect(UInt64(st.st_ino) == file.inode && UInt64(st.st_size) == file.size)
            #expect(fcntl(opened.fd, F_GETFD) & FD_CLOEXEC != 0)
            previous = opened
        }
        #expect(previous == nil)
        #expect(openCount == 50)
        #expect(!namedWasOpen)
    }

    @Test func aFIFOInADirectoryIsSkippedWithoutBlockingWhenOpening() throws {
        try scratch.file("p/a.bin", size: 10)
        mkfifo(scratch.path + "/p/fifo", 0o644)
        var names: [String] = []
        let rest = FileSelection.forEach(paths: [scratch.path + "/p"], opening: true) { file, _ in
            names.append(Path.lastComponent(of: file.path))
        }
        #expect(names == ["a.bin"])
        #expect(rest.skipped.map(\.path) == [scratch.path + "/p/fifo"])
        #expect(rest.skipped.first?.reason.contains("FIFO") == true)
    }

    @Test func measuringAnOpenedFileAgreesWithOpeningByPath() throws {
        let cold = try scratch.file("r/cold.bin", size: 1 << 20)
        let warm = try scratch.file("r/warm.bin", size: 1 << 20, seed: 2)
        let half = try scratch.file("r/half.bin", size: 1 << 20, seed: 3)
        let empty = try scratch.file("r/empty.bin", size: 0)
        let sparse = scratch.path + "/r/sparse.bin"
        let fd = open(sparse, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(ftruncate(fd, 4 << 20) == 0)
        close(fd)
        _ = Prewarmer().warm(FileSelection(paths: [warm]).files)
        _ = Prewarmer().warm(FileSelection(paths: [half]).files)
        try OpenFile(half).advise(POSIX_FADV_DONTNEED, offset: 512 << 10, length: 512 << 10)

        for method in [ResidencyMethod.auto, .mincore] {
            var measured: [String: FileResidency] = [:]
            _ = FileSelection.forEach(paths: [scratch.path + "/r"], opening: true) { file, opened in
                #expect(opened != nil)
                let streamed = FileResidency.measure(file, opened: opened, method: method)
                let byPath = FileResidency.measure(file, method: method)
                #expect(streamed == byPath)
                measured[Path.lastComponent(of: file.path)] = streamed
            }
            #expect(measured["cold.bin"]?.resident == 0)
            #expect(measured["warm.bin"]?.resident == 1 << 20)
            #expect(measured["warm.bin"]?.percent == 100)
            #expect(measured["half.bin"]?.resident == 512 << 10)
            #expect(measured["empty.bin"]?.percent == 100)
            // A file that is all hole reads as zeros without I/O: fully resident.
            #expect(measured["sparse.bin"]?.resident == 4 << 20)
            if method == .auto && Kernel.hasCachestat {
                #expect(measured["warm.bin"]?.method == .cachestat)
            }
        }
        _ = cold
        _ = empty
    }

}
