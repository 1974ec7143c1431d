/// `diff -u` of two small texts (config files, fstab), for `--diff` output.
public enum UnifiedDiff {
    /// Empty when the texts are equal. Lines are compared whole; a missing
    /// final newline is not flagged.
    public static func make(old: String, new: String, oldLabel: String, newLabel: String, context: Int = 3) -> String {
        guard old != new else { return "" }
        let a = lines(old)
        let b = lines(new)
        // Longest common subsequence table (files here are a few hundred lines at most).
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        enum Op { case same(String), del(String), add(String) }
        var ops: [Op] = []
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if i < a.count && j < b.count && a[i] == b[j] {
                ops.append(.same(a[i]))
                i += 1
                j += 1
            } else if i < a.count && (j == b.count || lcs[i + 1][j] >= lcs[i][j + 1]) {
                ops.append(.del(a[i]))
                i += 1  // deletions first, as diff -u prints them
            } else {
                ops.append(.add(b[j]))
                j += 1
            }
        }
        // Group changes into hunks with `context` lines around them.
        let changed = ops.indices.filter { if case .same = ops[$0] { return false } else { return true } }
        var hunks: [(Int, Int)] = []
        for index in changed {
            let start = max(0, index - context)
            let end = min(ops.count, index + context + 1)
            if let last = hunks.last, start <= last.1 {
                hunks[hunks.count - 1].1 = max(last.1, end)
            } else {
                hunks.append((start, end))
            }
        }
        var out = "--- \(oldLabel)\n+++ \(newLabel)\n"
        for (start, end) in hunks {
            var oldLine = 1
            var newLine = 1
            for op in ops[..<start] {
                switch op {
                case .same:
                    oldLine += 1
                    newLine += 1
                case .del: oldLine += 1
                case .add: newLine += 1
                }
            }
            var body = ""
            var oldCount = 0
            var newCount = 0
            for op in ops[start..<end] {
                switch op {
                case .same(let l):
                    body += " \(l)\n"
                    oldCount += 1
                    newCount += 1
                case .del(let l):
                    body += "-\(l)\n"
                    oldCount += 1
                case .add(let l):
                    body += "+\(l)\n"
                    newCount += 1
                }
            }
            out +=
                "@@ -\(oldCount == 0 ? oldLine - 1 : oldLine),\(oldCount) +\(newCount == 0 ? newLine - 1 : newLine),\(newCount) @@\n"
                + body
        }
        return out
    }

    static func lines(_ text: String) -> [String] {
        guard !text.isEmpty else { return [] }
        var result = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if text.hasSuffix("\n") { result.removeLast() }
        return result
    }
}
