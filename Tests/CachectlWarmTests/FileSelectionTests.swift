import CachectlSystem
import CachectlWarm
import Foundation
import Glibc
import Testing

@Suite struct FileSelectionTests {
    let scratch: ScratchDirectory

    init() throws { scratch = try ScratchDirectory() }

    @Test func directoriesAreWalkedRecursivelyInSortedOrder() throws {
        try scratch.file("m/b.gguf", size: 10)
        try scratch.file("m/a.gguf", size: 10)
        try scratch.file("m/sub/c.safetensors", size: 10)
        let selection = FileSelection(paths: [scratch.path + "/m"])
        #expect(selection.files.map { Path.lastComponent(of: $0.path) } == ["a.gguf", "b.gguf", "c.safetensors"])
        #expect(selection.problems.isEmpty)
    }

    @Test func includeAndExcludeGlobsFilterDirectoryContents() throws {
        try scratch.file("m/a.gguf", size: 1)
        try scratch.file("m/notes.txt", size: 1)
        try scratch.file("m/sub/b.gguf", size: 1)
        let included = FileSelection(paths: [scratch.path + "/m"], include: ["*.gguf"])
        #expect(included.files.map { Path.lastComponent(of: $0.path) } == ["a.gguf", "b.gguf"])
        let excluded = FileSelection(paths: [scratch.path + "/m"], exclude: ["sub/*"])
        #expect(excluded.files.map { Path.lastComponent(of: $0.path) } == ["a.gguf", "notes.txt"])
    }

    @Test func oneShardSelectsEveryShardThatExists() throws {
        for i in [1, 2, 4] { try scratch.file("llama-0000\(i)-of-00004.gguf", size: 100) }
        let selection = FileSelection(paths: [scratch.path + "/llama-00002-of-00004.gguf"])
        #expect(
            selection.files.map { Path.lastComponent(of: $0.path) } == [
                "llama-00001-of-00004.gguf", "llama-00002-of-00004.gguf", "llama-00004-of-00004.gguf",
            ])
        #expect(selection.missingShards == [scratch.path + "/llama-00003-of-00004.gguf"])
        #expect(selection.totalSize == 300)
    }

    @Test func symlinksAreFollowedAndEachFileCountsOnce() throws {
        let blob = try scratch.file("blobs/sha256-abc", size: 64)
        try FileManager.default.createDirectory(atPath: scratch.path + "/models", withIntermediateDirectories: true)
        symlink(blob, scratch.path + "/models/llama3.gguf")
        let selection = FileSelection(paths: [scratch.path + "/models/llama3.gguf", blob])
        #expect(selection.files.count == 1)
        #expect(selection.files.first?.resolvedPath == blob)
        #expect(selection.files.first?.size == 64)
    }

    @Test func loopsAndSpecialFilesAreRefusedWithAReason() throws {
        let loop = scratch.path + "/loop"
        symlink(loop, loop)
        let fifo = scratch.path + "/fifo"
        mkfifo(fifo, 0o600)
        let selection = FileSelection(paths: [loop, fifo, scratch.path + "/missing.gguf", "/dev/null"])
        #expect(selection.files.isEmpty)
        #expect(selection.problems.map(\.path) == [loop, fifo, scratch.path + "/missing.gguf", "/dev/null"])
        #expect(selection.problems[0].reason.contains("symlink loop"))
        #expect(selection.problems[1].reason.contains("FIFO"))
        #expect(selection.problems[2].reason.contains("no such file"))
        #expect(selection.problems[3].reason.contains("character device"))
    }

    @Test func specialFilesInsideDirectoriesAreSkippedNotFatal() throws {
        try scratch.file("m/a.gguf", size: 1)
        mkfifo(scratch.path + "/m/pipe", 0o600)
        symlink(scratch.path + "/m", scratch.path + "/m/self")
        let selection = FileSelection(paths: [scratch.path + "/m"])
        #expect(selection.files.count == 1)
        #expect(selection.problems.isEmpty)
        #expect(selection.skipped.map { Path.lastComponent(of: $0.path) }.sorted() == ["pipe", "self"])
    }
}
