import CachectlSystem

/// The counters of /proc/fs/fscache/stats (and /proc/fs/netfs/stats where the
/// kernel has it), read by label and key rather than by position: the lines
/// differ across kernels (`IO : rd= wr=` since 5.17, `Retrvls:`/`Pages :` before,
/// netfs's `CaRdOps:`/`DownOps:` lines on 6.12). What they mean on each layout
/// is `CacheTraffic`'s business.
public struct FSCacheStats: Sendable, Equatable, Codable {
    /// label → key → value, e.g. `["IO": ["rd": 16384, "wr": 8192]]`. Lines that
    /// share a label (netfs prints several) are merged.
    public var counters: [String: [String: UInt64]]

    public init(counters: [String: [String: UInt64]] = [:]) { self.counters = counters }

    /// Parses `Label : key=value key=value` lines; anything else is skipped.
    public static func parse(_ text: String) -> FSCacheStats {
        var counters: [String: [String: UInt64]] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let label = line[..<colon].trimmingWhitespace()
            guard !label.isEmpty, !label.contains(" ") else { continue }
            for field in line[line.index(after: colon)...].split(separator: " ") {
                let pair = field.split(separator: "=", maxSplits: 1)
                guard pair.count == 2, let value = UInt64(pair[1]) else { continue }
                counters[label, default: [:]][String(pair[0])] = value
            }
        }
        return FSCacheStats(counters: counters)
    }

    /// Reads fscache's stats and, when present, netfs's own file (newer kernels moved the netfs lines there).
    public static func read(proc: String = "/proc") throws(CachectlError) -> FSCacheStats {
        var stats = parse(try AtomicFile.readText(proc + "/fs/fscache/stats"))
        if let netfs = try? AtomicFile.readText(proc + "/fs/netfs/stats") {
            stats.counters.merge(parse(netfs).counters) { mine, theirs in mine.merging(theirs) { a, _ in a } }
        }
        return stats
    }

    public func value(_ label: String, _ key: String) -> UInt64? { counters[label]?[key] }

    /// The counters by meaning (reads from the cache, writes, downloads) and their unit.
    public var traffic: CacheTraffic { CacheTraffic(stats: self) }

    /// Cookies (files and volumes) the cache knows about: `Cookies n=`.
    public var cookies: UInt64? { value("Cookies", "n") }
    /// Writes refused for lack of space (`NoSpace nwr`) and objects culled (`NoSpace cull`).
    public var noSpaceWrites: UInt64? { value("NoSpace", "nwr") }
    public var culled: UInt64? { value("NoSpace", "cull") }

    /// Counter increases from `earlier` to self (for "reads during this test").
    public func delta(since earlier: FSCacheStats) -> FSCacheStats {
        var result: [String: [String: UInt64]] = [:]
        for (label, keys) in counters {
            for (key, value) in keys {
                let before = earlier.counters[label]?[key] ?? 0
                result[label, default: [:]][key] = value >= before ? value - before : value
            }
        }
        return FSCacheStats(counters: result)
    }
}

/// One cache from /proc/fs/fscache/caches.
public struct FSCacheCache: Sendable, Equatable, Codable {
    public var name: String
    /// fscache's state letter: `-` unset, `P` preparing, `A` active, `E` failed, `W` withdrawn.
    public var state: String
    public var refs: Int?
    public var volumes: Int?
    public var objects: Int?
    public var accesses: Int?

    public var stateName: String {
        switch state {
        case "-": "unset"
        case "P": "preparing"
        case "A": "active"
        case "E": "failed"
        case "W": "withdrawn"
        default: "unknown (\(state))"
        }
    }

    public var isActive: Bool { state == "A" }

    /// Parses the table by its header: `CACHE REF VOLS OBJS ACCES S NAME` (6.x).
    public static func parse(_ text: String) -> [FSCacheCache] {
        let lines = text.split(separator: "\n")
        guard let header = lines.first else { return [] }
        let columns = header.split(separator: " ").map(String.init)
        var result: [FSCacheCache] = []
        for line in lines.dropFirst() where !line.hasPrefix("=") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard fields.count >= columns.count else { continue }
            var byColumn: [String: String] = [:]
            for (index, column) in columns.enumerated() {
                // NAME is last and may hold spaces.
                byColumn[column] = index == columns.count - 1 ? fields[index...].joined(separator: " ") : fields[index]
            }
            guard let state = byColumn["S"], let name = byColumn["NAME"] else { continue }
            result.append(
                FSCacheCache(
                    name: name, state: state, refs: byColumn["REF"].flatMap { Int($0) },
                    volumes: byColumn["VOLS"].flatMap { Int($0) }, objects: byColumn["OBJS"].flatMap { Int($0) },
                    accesses: byColumn["ACCES"].flatMap { Int($0) }))
        }
        return result
    }

    public static func read(proc: String = "/proc") throws(CachectlError) -> [FSCacheCache] {
        parse(try AtomicFile.readText(proc + "/fs/fscache/caches"))
    }
}
