import CachectlStatus
import CachectlSystem
import FoundationEssentials
import Glibc
import HTTPTypes
import Hummingbird

/// The dashboard: one page rendered on the server from `Templates/page.mustache`
/// (every value HTML-escaped). Forms post to the API and work without
/// JavaScript; a few inline lines (allowed by the CSP nonce) follow a job's
/// progress over Server-Sent Events. The traffic chart is SVG drawn here.
enum Page {
    /// The template is built into the binary; the tests render it in every branch.
    static let template = Template(String(decoding: PackageResources.page_mustache, as: UTF8.self), escaping: .html)

    static func response(
        status: MachineStatus, history: TrafficSampler.History, jobs: [JobBoard.Job], selectedJob: String?
    ) -> Response {
        var nonceBytes = [UInt8](repeating: 0, count: 16)
        for i in nonceBytes.indices { nonceBytes[i] = UInt8.random(in: 0...255) }
        let nonce = Data(nonceBytes).base64EncodedString()
        let html: String
        do {
            html = try render(status: status, history: history, jobs: jobs, selectedJob: selectedJob, nonce: nonce)
        } catch {
            // Only a broken template (a bug the tests catch) gets here.
            return Response(
                status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "page template: \(error)\n")))
        }
        return Response(
            status: .ok,
            // Referrer-Policy same-origin, not no-referrer: under no-referrer Chromium
            // sends `Origin: null` with a form post, which the guard refuses.
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy:
                    "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "same-origin",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func render(
        status s: MachineStatus, history: TrafficSampler.History, jobs: [JobBoard.Job], selectedJob: String?,
        nonce: String,
        now: Date = Date()
    ) throws(Template.RenderError) -> String {
        typealias V = Template.Value
        let c = s.cache
        var cache: [String: V] = [
            "active": .bool(c.caches.contains(where: \.isActive)),
            "daemon": c.daemonPids.isEmpty ? "not running" : "running",
            "hit_ratio": .text(c.hitRatio.map { percent($0 * 100) } ?? "–"),
            "hit_basis": .text(c.hitRatioBasis ?? "no reads yet"),
            "unit": .text(c.unit?.rawValue ?? "-"),
            "layout": .text(c.statsLayout?.rawValue ?? "no FS-Cache statistics"),
            "reads": .text(c.cacheReads.map(String.init) ?? "–"),
            "writes": .text(c.cacheWrites.map(String.init) ?? "–"),
            "downloads": .text(c.downloads.map(String.init) ?? "–"),
            "dir": .optional(c.config?.dir), "tag": .optional(c.config?.tag), "usage": .null,
        ]
        if let usage = c.usage {
            let config = c.config
            cache["usage"] = [
                "free_pct": .text(percent(usage.freeBytesPercent)), "free": .number(usage.freeBytesPercent),
                "available": .text(ByteSize.format(usage.availableBytes)),
                "total": .text(ByteSize.format(usage.totalBytes)),
                "brun": .number(config?.brun ?? 10), "bcull": .number(config?.bcull ?? 7),
                "bstop": .number(config?.bstop ?? 3),
            ]
        }
        let tierNames = s.tiers.filter(\.live).map(\.name)
        let tiers: [V] = s.tiers.map { t in
            let u = t.usage
            return [
                "name": .text(t.name), "type": .text(t.type.rawValue), "path": .text(t.path),
                "size": .text(ByteSize.format(t.size)),
                "live": .bool(t.live), "models": .text(t.models.joined(separator: ", ")),
                "url_name": .text(urlSegment(t.name)),
                "used": .optional(u.map { ByteSize.format($0.used) }),
                "used_value": u.map { .number($0.used) } ?? .null,
                "total_value": u.map { .number(max($0.total, 1)) } ?? .null,
                "used_pct": .optional(u.map { percent($0.total == 0 ? 0 : Double($0.used) * 100 / Double($0.total)) }),
                "zram_ratio": .optional(t.zram?.compressionRatio.map { fixed($0, digits: 2) + "×" }),
            ]
        }
        let models: [V] = s.models.map { m in
            [
                "name": .text(m.name), "url_name": .text(urlSegment(m.name)), "size": .text(ByteSize.format(m.bytes)),
                "layout": .text(m.layout.rawValue), "hot": .bool(m.location != "cold"), "location": .text(m.location),
                "pinned": m.pinnedTier.map(V.text) ?? false, "tiers": .list(tierNames.map { ["name": .text($0)] }),
                "problem": m.problem.map(V.text) ?? false,
            ]
        }
        let shares: [V] = s.shares.map { m in
            [
                "mountpoint": .text(m.mountpoint), "fstype": .text(m.fstype), "source": .text(m.source),
                "mounted": .bool(m.mounted), "fsc": .bool(m.fscEnabled),
            ]
        }
        let jobRows: [V] = jobs.reversed().prefix(10).map { j in
            [
                "id": .text(j.id), "kind": .text(j.kind), "target": .text(j.target), "state": .text(j.state.rawValue),
                "running": .bool(j.state == .running),
                "pct": .number(
                    j.totalBytes > 0
                        ? Int(Double(j.doneBytes) * 100 / Double(j.totalBytes)) : (j.state == .running ? 0 : 100)),
                "msg": .text(j.msg), "selected": .bool(j.id == selectedJob),
            ]
        }
        let view: V = [
            "nonce": .text(nonce), "cache": .object(cache), "tiers": .list(tiers), "has_tiers": .bool(!tiers.isEmpty),
            "models": .list(models), "has_models": .bool(!models.isEmpty), "shares": .list(shares),
            "has_shares": .bool(!shares.isEmpty), "jobs": .list(jobRows), "has_jobs": .bool(!jobRows.isEmpty),
            "any_running": .bool(jobs.contains { $0.state == .running }),
            "chart": .text(Chart.svg(history)), "unreadable": .list(s.unreadable.map(V.text)),
            "generated": .text(now.formatted(Date.ISO8601FormatStyle())),
        ]
        return try template.render(view)
    }

    static func percent(_ value: Double) -> String { fixed(value, digits: 1) + "%" }

    /// `value` with `digits` decimals as C's printf writes it ("%.1f": halves to
    /// even, as `String(format:)` did), in the C locale cachectl runs in.
    static func fixed(_ value: Double, digits: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 352)  // the longest double, 309 digits, fits
        _ = withVaList([digits, value]) { vsnprintf(&buffer, buffer.count, "%.*f", $0) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A name as one URL path segment.
    static func urlSegment(_ name: String) -> String { PercentEncoding.pathSegment(name) }
}

/// Cache reads and writes per sampling interval over the last hour, as inline SVG.
enum Chart {
    static func svg(_ h: TrafficSampler.History) -> String {
        let width = 600.0
        let height = 140.0
        let pad = 4.0
        func deltas(_ key: KeyPath<TrafficSampler.Sample, UInt64?>) -> [(Double, Double)] {
            zip(h.samples, h.samples.dropFirst()).compactMap { a, b in
                guard let x = a[keyPath: key], let y = b[keyPath: key] else { return nil }
                return (b.time, y >= x ? Double(y - x) : 0)  // a counter reset (reboot) draws 0
            }
        }
        let reads = deltas(\.cacheReads)
        let writes = deltas(\.cacheWrites)
        let now = h.samples.last?.time ?? Date().timeIntervalSince1970
        let maxValue = max(1, (reads + writes).map(\.1).max() ?? 1)
        func points(_ series: [(Double, Double)]) -> String {
            series.map { t, v in
                let x = pad + (width - 2 * pad) * (1 - min(3600, max(0, now - t)) / 3600)
                let y = height - pad - (height - 2 * pad) * v / maxValue
                return Page.fixed(x, digits: 1) + "," + Page.fixed(y, digits: 1)
            }.joined(separator: " ")
        }
        let unit = h.unit ?? "-"
        let label =
            h.unit == nil
            ? "no FS-Cache statistics on this kernel"
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
