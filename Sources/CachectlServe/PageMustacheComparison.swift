// TEMPORARY: the page as swift-mustache rendered it, to compare with Template
// before swift-mustache is removed (deleted in the next commit).
import CachectlStatus
import CachectlSystem
import Foundation
import Mustache

extension Page {
    static let mustacheTemplate: MustacheTemplate = {
        try! MustacheTemplate(string: String(decoding: PackageResources.page_mustache, as: UTF8.self))
    }()

    static func renderWithMustache(status s: MachineStatus, history: TrafficSampler.History, jobs: [JobBoard.Job], selectedJob: String?, nonce: String, now: Date) -> String {
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
            "generated": ISO8601DateFormatter().string(from: now),
        ]
        if let selectedJob, let job = jobs.first(where: { $0.id == selectedJob }) { view["selected_job"] = job.id }
        return mustacheTemplate.render(view)
    }

}
