import ArgumentParser
import CachectlSystem
import CachectlWarm

struct Residency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "residency",
        abstract: "Show how much of each file is in the page cache (like fincore).",
        discussion: """
            Uses cachestat(2) on Linux 6.5+ and mincore(2) before. For files this user cannot \
            write, older kernels' mincore claims every page is resident; cachectl reports such \
            residency as unknown instead of a wrong 100%.

            Examples:
              cachectl residency ~/models
              cachectl residency --json model-00001-of-00004.gguf
            """
    )

    @OptionGroup var selection: PathSelectionOptions
    @OptionGroup var output: OutputOptions

    /// Streams: each file is measured and printed as the walk finds it (through a
    /// 64 KiB output buffer), so time and memory stay flat from one file to 100,000.
    /// The table's columns have fixed widths for that reason. With --json the envelope
    /// is written by hand, keys in sorted order except `failed`, which comes after
    /// `files` because it is known only at the end.
    func run() throws {
        output.bootstrap()
        var out = BufferedOutput()
        let json = output.json
        let method = selection.residencyMethod
        var total = ResidencyTotal()
        var filesFailed = false
        if json {
            out.append(#"{"changed":false,"files":["#)
        } else {
            out.appendRow("RESIDENT", "SIZE", "PERCENT", "FILE")
        }
        let files = FileSelection.forEach(
            paths: selection.paths, include: selection.include, exclude: selection.exclude, opening: true
        ) { file, opened in
            let result = FileResidency.measure(file, opened: opened, method: method)
            if let error = result.error {
                out.flush()
                console.error("\(result.path): \(error)")
                filesFailed = true
            }
            if json {
                if total.files > 0 { out.append(byte: UInt8(ascii: ",")) }
                out.appendJSON(result)
            } else {
                let size = ByteSize.format(result.size)
                out.appendRow(
                    result.resident.map { $0 == result.size ? size : ByteSize.format($0) } ?? "?", size,
                    result.percent.map(Self.percentText) ?? "?", result.path)
            }
            total.add(result)
        }
        out.flush()
        let failed = reportSelectionProblems(files) || filesFailed
        let percentText = total.percent.map(Self.percentText)
        if json {
            let summary =
                "\(total.files) file\(total.files == 1 ? "" : "s"): \(ByteSize.format(total.resident)) of \(ByteSize.format(total.size)) resident"
                + (percentText.map { " (\($0))" } ?? "")
            out.append(#"],"failed":"# + (failed ? "true" : "false") + #","msg":"#)
            out.appendJSONString(summary)
            out.append(#","problems":["#)
            for (index, problem) in files.problems.enumerated() {
                out.append(index == 0 ? #"{"error":"# : #",{"error":"#)
                out.appendJSONString(problem.reason)
                out.append(#","path":"#)
                out.appendJSONString(problem.path)
                out.append("}")
            }
            out.append(#"],"total":{"files":"# + String(total.files))
            if let percent = total.percent {
                out.append(#","percent":"#)
                out.appendJSONNumber(percent)
            }
            out.append(#","resident":"# + String(total.resident) + #","size":"# + String(total.size) + "}}\n")
        } else if total.files > 1 {
            out.appendRow(
                ByteSize.format(total.resident), ByteSize.format(total.size), percentText ?? "?",
                "total (\(total.files) files)")
        }
        out.flush()
        if failed { throw ReportedFailure(code: .failed) }
    }

    static func percentText(_ percent: Double) -> String {
        percent == 100 ? "100.0%" : formatFixed(percent, digits: 1) + "%"
    }
}

/// The sums of `cachectl residency`, kept as files stream by.
struct ResidencyTotal {
    var files = 0
    var size: UInt64 = 0
    var resident: UInt64 = 0
    /// The size of the files whose residency could be measured.
    var measuredSize: UInt64 = 0
    var measured = 0

    mutating func add(_ result: FileResidency) {
        files += 1
        size += result.size
        if let bytes = result.resident {
            resident += bytes
            measuredSize += result.size
            measured += 1
        }
    }

    /// Over the files whose residency could be measured; nil when none could.
    var percent: Double? {
        measured == 0 ? nil : CachectlWarm.Residency.percent(resident, of: measuredSize)
    }
}

struct Evict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evict",
        abstract: "Drop files from the page cache (POSIX_FADV_DONTNEED), and say how much was released.",
        discussion: """
            Only the named files are dropped, never the whole page cache. Dirty pages are \
            written back first so they can be dropped too.

            Examples:
              cachectl evict ~/models/old-model.gguf
              cachectl evict --json /srv/models --include '*.safetensors'
            """
    )

    @OptionGroup var selection: PathSelectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        output.bootstrap()
        let files = selection.select()
        let selectionFailed = reportSelectionProblems(files)
        let results = files.files.map { Evictor.evict($0, method: selection.residencyMethod) }
        let failed = reportFileErrors(results) || selectionFailed
        let released = results.reduce(0) { $0 + ($1.released ?? 0) }
        let summary =
            "evicted \(results.count) file\(results.count == 1 ? "" : "s"): released \(ByteSize.format(released)) from the page cache"
        try CommandOutput.finish(
            output, changed: released > 0, failed: failed, msg: summary,
            data: EvictOutput(files: results, releasedBytes: released)
        ) { summary }
    }
}

struct EvictOutput: Encodable {
    var files: [FileEviction]
    var releasedBytes: UInt64
}

extension BufferedOutput {
    /// One file as JSONEncoder would write a FileResidency here (snake_case, sorted keys,
    /// nil fields left out).
    mutating func appendJSON(_ result: FileResidency) {
        var prefix = #"{""#
        if let error = result.error {
            append(prefix + #"error":"#)
            appendJSONString(error)
            prefix = #",""#
        }
        if let method = result.method {
            append(prefix + #"method":"#)
            appendJSONString(method.rawValue)
            prefix = #",""#
        }
        append(prefix + #"path":"#)
        appendJSONString(result.path)
        if let percent = result.percent {
            append(#","percent":"#)
            appendJSONNumber(percent)
        }
        if let resident = result.resident {
            append(#","resident":"#)
            appendJSONNumber(resident)
        }
        append(#","size":"#)
        appendJSONNumber(result.size)
        append(byte: UInt8(ascii: "}"))
    }
}

extension BufferedOutput {
    /// One line of the residency table: three right-aligned columns as wide as the
    /// widest value ByteSize.format gives below a PiB (`10.00 KiB` when 9.999 rounds
    /// up), then the path. Fixed widths, so rows can stream.
    mutating func appendRow(_ resident: String, _ size: String, _ percent: String, _ file: String) {
        appendPadded(resident, 9)
        append("  ")
        appendPadded(size, 9)
        append("  ")
        appendPadded(percent, 7)
        append("  ")
        append(file)
        append(byte: UInt8(ascii: "\n"))
    }

    private mutating func appendPadded(_ text: String, _ width: Int) {
        for _ in 0..<max(0, width - text.utf8.count) { append(byte: UInt8(ascii: " ")) }
        append(text)
    }
}
