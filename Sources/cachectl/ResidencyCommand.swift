import ArgumentParser
import CachectlSystem
import CachectlWarm

struct Residency: ParsableCommand {
    static let configuration = CommandConfiguration(
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

    func run() throws {
        output.bootstrap()
        let files = selection.select()
        let selectionFailed = reportSelectionProblems(files)
        let results = files.files.map { FileResidency.measure($0, method: selection.residencyMethod) }
        let failed = reportFileErrors(results) || selectionFailed
        let total = ResidencyTotal(results)
        let summary = "\(results.count) file\(results.count == 1 ? "" : "s"): \(ByteSize.format(total.resident)) of \(ByteSize.format(total.size)) resident"
            + (total.percent.map { " (\(formatFixed($0, digits: 1))%)" } ?? "")
        try CommandOutput.finish(
            output, changed: false, failed: failed, msg: summary,
            data: ResidencyOutput(files: results, total: total, problems: files.problems)
        ) {
            Self.table(results, total: total)
        }
    }

    static func table(_ results: [FileResidency], total: ResidencyTotal) -> String {
        var rows = [["RESIDENT", "SIZE", "PERCENT", "FILE"]]
        for r in results {
            rows.append([
                r.resident.map(ByteSize.format) ?? "?", ByteSize.format(r.size),
                r.percent.map { formatFixed($0, digits: 1) + "%" } ?? "?", r.path,
            ])
        }
        if results.count > 1 {
            rows.append([
                ByteSize.format(total.resident), ByteSize.format(total.size),
                total.percent.map { formatFixed($0, digits: 1) + "%" } ?? "?", "total (\(total.files) files)",
            ])
        }
        let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            (0..<3).map { String(repeating: " ", count: widths[$0] - row[$0].count) + row[$0] }.joined(separator: "  ")
                + "  " + row[3]
        }.joined(separator: "\n")
    }
}

struct ResidencyTotal: Encodable {
    var files: Int
    var size: UInt64
    var resident: UInt64
    /// Over the files whose residency could be measured; nil when none could.
    var percent: Double?

    init(_ results: [FileResidency]) {
        files = results.count
        size = results.reduce(0) { $0 + $1.size }
        let measured = results.filter { $0.resident != nil }
        resident = measured.reduce(0) { $0 + ($1.resident ?? 0) }
        percent = measured.isEmpty ? nil : CachectlWarm.Residency.percent(resident, of: measured.reduce(0) { $0 + $1.size })
    }
}

struct ResidencyOutput: Encodable {
    var files: [FileResidency]
    var total: ResidencyTotal
    var problems: [FileProblem]

    enum CodingKeys: String, CodingKey { case files, total, problems }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(files, forKey: .files)
        try c.encode(total, forKey: .total)
        try c.encode(problems.map { ["path": $0.path, "error": $0.reason] }, forKey: .problems)
    }
}

struct Evict: ParsableCommand {
    static let configuration = CommandConfiguration(
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
        let summary = "evicted \(results.count) file\(results.count == 1 ? "" : "s"): released \(ByteSize.format(released)) from the page cache"
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
