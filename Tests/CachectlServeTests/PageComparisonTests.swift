// TEMPORARY: Template renders the page byte for byte as swift-mustache did
// (deleted with swift-mustache in the next commit).
import CachectlStatus
import CachectlSystem
import Foundation
import Testing

@testable import CachectlServe

@Suite(.serialized, .enabled(if: Privileges.isRoot && Privileges.hasPrivateMountNamespace))
struct PageComparisonTests {
    func compare(_ status: MachineStatus, _ history: TrafficSampler.History, _ jobs: [JobBoard.Job], _ selected: String?) throws {
        let ours = try Page.render(status: status, history: history, jobs: jobs, selectedJob: selected, nonce: "n0nce+/=", now: PageStates.now)
        let theirs = Page.renderWithMustache(status: status, history: history, jobs: jobs, selectedJob: selected, nonce: "n0nce+/=", now: PageStates.now)
        #expect(ours == theirs)
        if ours != theirs {
            let a = ours.split(separator: "\n", omittingEmptySubsequences: false)
            let b = theirs.split(separator: "\n", omittingEmptySubsequences: false)
            for (i, (x, y)) in zip(a, b).enumerated() where x != y {
                Issue.record("line \(i + 1):\n ours:   \(x)\n theirs: \(y)")
                break
            }
            if a.count != b.count { Issue.record("lines: ours \(a.count), theirs \(b.count)") }
        }
        print("compared \(ours.utf8.count) bytes")
    }

    @Test func sameBytesAsSwiftMustache() throws {
        let s = try ServeScratch()
        try compare(PageStates.empty(s), PageStates.history(samples: 0), [], nil)
        try compare(PageStates.empty(s), PageStates.history(samples: 1), PageStates.jobs(), "j2-def")
        try s.addModel("llama-tiny.gguf", bytes: 1 << 20)
        try s.tmpfsTier("fast")
        let full = try PageStates.full(s)
        #expect(full.tiers.count == 2 && full.models.count == 2)
        try compare(full, PageStates.history(samples: 8), PageStates.jobs(), "j1-abc")
        try compare(full, PageStates.history(samples: 0), [], "nope")
        var unreadable = full
        unreadable.unreadable = ["tiers: a", "models: <b>"]
        unreadable.cache.config?.brun = 20
        try compare(unreadable, PageStates.history(samples: 3), Array(PageStates.jobs().prefix(2)), nil)
        // The status as read, unchanged (whatever this machine has).
        try compare(MachineStatus.read(environment: s.environment), PageStates.history(samples: 2), [], nil)
    }
}
