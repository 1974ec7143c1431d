import CachectlStatus
import CachectlSystem
import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// The dashboard: one page rendered on the server from `Templates/page.mustache`
/// (mustache escapes every value). Forms post to the API and work without
/// JavaScript; a few inline lines (allowed by the CSP nonce) follow a job's
/// progress over Server-Sent Events. The traffic chart is SVG drawn here.
enum Page {
    static let template: MustacheTemplate = {
        // The template is built into the binary and checked by the tests: it parses.
        try! MustacheTemplate(string: String(decoding: PackageResources.page_mustache, as: UTF8.self))
    }()

    static func response(status: MachineStatus, history: TrafficSampler.History, jobs: [JobBoard.Job], selectedJob: String?) -> Response {
        var nonceBytes = [UInt8](repeating: 0, count: 16)
        for i in nonceBytes.indices { nonceBytes[i] = UInt8.random(in: 0...255) }
        let nonce = Data(nonceBytes).base64EncodedString()
        let html = render(status: status, history: history, jobs: jobs, selectedJob: selectedJob, nonce: nonce)
        return Response(
            status: .ok,
            // Referrer-Policy same-origin, not no-referrer: under no-referrer Chromium
            // sends `Origin: null` with a form post, which the guard refuses.
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "same-origin",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func render(status s: MachineStatus, history: TrafficSampler.History, jobs: [JobBoard.Job], selectedJob: String?, nonce: String) -> String {
        let c = s.cache
        var cache: [String: Any] = [
            "active": c.caches.contains(where: \.isActive),
            "daemon": c.daemonPids.isEmpty ? "not running" : "running",
            "hit_ratio": c.hitRatio.map { percent($0 * 100) } ?? "–",
            "hit_basis": c.hitRatioBasis ?? "no reads yet",
            "unit": c.unit?.rawValue ?? "-",
            "layout": c.statsLayout?.rawValue ?? "no FS-Cache statistics",
            "reads": c.cacheReads.map(String.init) ?? "–",
            "writes": c.cacheWrites.map(String.init) ?? "–",
            "downloads": c.downloads.map(String.init) ?? "–",
        ]
        if let config = c.config { cache["dir"] = config.dir; cache["tag"] = config.tag }
        if let usage = c.usage {
            let config = c.config
            cache["usage"] = [
                "free_pct": percent(usage.freeBytesPercent), "free": usage.freeBytesPercent,
                "available": ByteSize.format(usage.availableBytes), "total": ByteSize.format(usage.totalBytes),
                "brun": config?.brun ?? 10, "bcull": config?.bcull ?? 7, "bstop": config?.bstop ?? 3,
            ] as [String: Any]
        }
        let tierNames = s.tiers.filter(\.live).map(\.name)
        let tiers: [[String: Any]] = s.tiers.map { t in
            var row: [String: Any] = [
                "name": t.name, "type": t.type.rawValue, "path": t.path, "size": ByteSize.format(t.size), "live": t.live,
                "models": t.models.joined(separator: ", "), "url_name": urlSegment(t.name),
            ]
            if let u = t.usage {
                row["used"] = ByteSize.format(u.used)
                row["used_value"] = u.used
                row["total_value"] = max(u.total, 1)
                row["used_pct"] = percent(u.total == 0 ? 0 : Double(u.used) * 100 / Double(u.total))
            }
            if let ratio = t.zram?.compressionRatio { row["zram_ratio"] = String(format: "%.2f×", ratio) }
            return row
        }
        let models: [[String: Any]] = s.models.map { m in
            [
                "name": m.name, "url_name": urlSegment(m.name), "size": ByteSize.format(m.bytes), "layout": m.layout.rawValue,
                "hot": m.location != "cold", "location": m.location, "pinned": m.pinnedTier.map { $0 as Any } ?? false,
                "tiers": tierNames.map { ["name": $0] }, "problem": m.problem.map { $0 as Any } ?? false,
            ]
        }
        let shares: [[String: Any]] = s.shares.map { m in
            ["mountpoint": m.mountpoint, "fstype": m.fstype, "source": m.source, "mounted": m.mounted, "fsc": m.fscEnabled]
        }
        let jobRows: [[String: Any]] = jobs.reversed().prefix(10).map { j in
            [
                "id": j.id, "kind": j.kind, "target": j.target, "state": j.state.rawValue, "running": j.state == .running,
                "pct": j.totalBytes > 0 ? Int(Double(j.doneBytes) * 100 / Double(j.totalBytes)) : (j.state == .running ? 0 : 100),
                "msg": j.msg, "selected": j.id == selectedJob,
            ]
        }
        var view: [String: Any] = [
            "nonce": nonce, "cache": cache, "tiers": tiers, "has_tiers": !tiers.isEmpty, "models": models,
            "has_models": !models.isEmpty, "shares": shares, "has_shares": !shares.isEmpty, "jobs": jobRows,
            "has_jobs": !jobRows.isEmpty, "any_running": jobs.contains { $0.state == .running },
            "chart": Chart.svg(history), "unreadable": s.unreadable,
            "generated": ISO8601DateFormatter().string(from: Date()),
        ]
        if let selectedJob, let job = jobs.first(where: { $0.id == selectedJob }) { view["selected_job"] = job.id }
        return template.render(view)
    }

    static func percent(_ value: Double) -> String { String(format: "%.1f%%", value) }

    /// A name as one URL path segment.
    static func urlSegment(_ name: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }
}

/// Cache reads and writes per sampling interval over the last hour, as inline SVG.
enum Chart {
    static func svg(_ h: TrafficSampler.History) -> String {
        let width = 600.0, height = 140.0, pad = 4.0
        func deltas(_ key: KeyPath<TrafficSampler.Sample, UInt64?>) -> [(Double, Double)] {
            zip(h.samples, h.samples.dropFirst()).compactMap { a, b in
                guard let x = a[keyPath: key], let y = b[keyPath: key] else { return nil }
                return (b.time, y >= x ? Double(y - x) : 0)  // a counter reset (reboot) draws 0
            }
        }
        let reads = deltas(\.cacheReads), writes = deltas(\.cacheWrites)
        let now = h.samples.last?.time ?? Date().timeIntervalSince1970
        let maxValue = max(1, (reads + writes).map(\.1).max() ?? 1)
        func points(_ series: [(Double, Double)]) -> String {
            series.map { t, v in
                let x = pad + (width - 2 * pad) * (1 - min(3600, max(0, now - t)) / 3600)
                let y = height - pad - (height - 2 * pad) * v / maxValue
                return String(format: "%.1f,%.1f", x, y)
            }.joined(separator: " ")
        }
        let unit = h.unit ?? "-"
        let label = h.unit == nil ? "no FS-Cache statistics on this kernel"
            : "peak \(Int(maxValue)) \(unit) per \(Int(h.intervalSeconds)) s; \(h.samples.count) samples"
        return """
            <svg class="chart" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-label="cache reads and writes, last hour">\
            <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#fafafa" stroke="#ccc"/>\
            <polyline fill="none" stroke="#1f77b4" stroke-width="2" points="\(points(reads))"/>\
            <polyline fill="none" stroke="#d62728" stroke-width="2" points="\(points(writes))"/>\
            <text x="8" y="16" font-size="12">\(label)</text></svg>
            """
    }
}
