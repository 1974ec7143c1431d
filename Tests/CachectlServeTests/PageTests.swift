import CachectlStatus
import CachectlSystem
import CachectlTestSupport
import Foundation
import Testing

@testable import CachectlServe

/// The page as `Template` renders it: escaping, loops, inverted sections and the
/// unescaped chart, pinned on states that take every branch of page.mustache.
@Suite struct PageTests {
    func render(_ status: MachineStatus, jobs: [JobBoard.Job] = [], selected: String? = nil, samples: Int = 0) throws
        -> String
    {
        try Page.render(
            status: status, history: PageStates.history(samples: samples), jobs: jobs, selectedJob: selected,
            nonce: "n0nce+/=", now: PageStates.now)
    }

    @Test func numbersAsPrintfWritesThem() {
        // Halves go to even, as String(format: "%.1f") did (ByteSize's formatFixed rounds them up).
        #expect(Page.percent(1.25) == "1.2%" && Page.percent(1.75) == "1.8%" && Page.percent(0.15) == "0.1%")
        #expect(
            Page.fixed(2.345, digits: 2) == "2.35" && Page.fixed(-0.01, digits: 1) == "-0.0"
                && Page.fixed(100, digits: 1) == "100.0")
        #expect(Page.urlSegment("a b/c?d#e%f;g<é>") == "a%20b%2Fc%3Fd%23e%25f%3Bg%3C%C3%A9%3E")
        #expect(Page.urlSegment("-._~!$&'()*+,=:@AZaz09") == "-._~!$&'()*+,=:@AZaz09")
    }

    @Test func emptyMachineTakesTheInvertedSections() throws {
        let s = try ServeScratch()
        let html = try render(PageStates.empty(s))
        #expect(html.hasPrefix("<!doctype html>\n<html lang=\"en\">\n"))
        #expect(html.contains("<p class=\"muted\">as of 2026-11-30T00:53:20Z</p>\n"))
        #expect(html.contains("FS-Cache <b>not active</b>, cachefilesd not running</div>"))
        #expect(html.contains("<b id=\"hit-ratio\">–</b><br><span class=\"muted\">no reads yet</span>"))
        #expect(html.contains("<h2>Shares</h2>\n\n<p class=\"muted\">no NFS or CIFS share</p>\n"))
        #expect(
            html.contains(
                "<h2>Tiers</h2>\n\n<p class=\"muted\">no tiers: cachectl tier create fast --type tmpfs --size 8G</p>\n")
        )
        #expect(html.contains("\n<p class=\"muted\">none yet</p>\n"))
        #expect(!html.contains("<table") && !html.contains("<noscript>") && !html.contains("<meter"))
        // {{.}} of a list of text, escaped; {{{chart}}} is markup.
        #expect(
            html.contains(
                #"<p class="failed">could not read mounts: &lt;mountinfo&gt; &amp; &quot;quoted&quot; &#39;single&#39;</p>"#
            ))
        #expect(
            html.contains(#"<svg class="chart" viewBox="0 0 600 140""#)
                && html.contains(">no FS-Cache statistics on this kernel</text></svg>\n"))
        #expect(html.contains(#"<script nonce="n0nce+/=">"#))
    }

    @Test func jobsLoopInOrderNewestFirstWithTheSelectedOneMarked() throws {
        let s = try ServeScratch()
        let html = try render(PageStates.empty(s), jobs: PageStates.jobs(), selected: "j2-def")
        #expect(html.contains(#"<noscript><meta http-equiv="refresh" content="2"></noscript>"#))
        let rows = html.split(separator: "\n").filter { $0.hasPrefix("<tr id=\"job-") }
        #expect(
            rows == [
                #"<tr id="job-j3-123"><td>j3-123</td><td>demote y</td><td class="running">running</td><td><progress max="100" value="33">33%</progress></td><td></td></tr>"#,
                #"<tr id="job-j2-def" class="selected"><td>j2-def</td><td>warm x</td><td class="failed">failed</td><td><progress max="100" value="33">33%</progress></td><td>&lt;failed&gt;</td></tr>"#,
                #"<tr id="job-j1-abc"><td>j1-abc</td><td>promote llama &lt;tiny&gt;</td><td class="succeeded">succeeded</td><td><progress max="100" value="100">100%</progress></td><td>promoted &quot;llama&quot; &amp; co&#39;s</td></tr>"#,
            ])
    }

    /// A live tmpfs tier needs root in a private mount namespace.
    @Test(.rootInPrivateMountNamespace)
    func modelsSharesAndTiersEscapedInTextAttributesAndURLs() throws {
        let s = try ServeScratch()
        try s.addModel("llama-tiny.gguf", bytes: 1 << 20)
        try s.tmpfsTier("fast")
        let html = try render(try PageStates.full(s), samples: 8)
        // A model name with <&"'> and URL delimiters: escaped as text and attribute, percent-encoded in the URL.
        let odd = #"odd &lt;b&gt;&amp;&quot;name&quot;&#39;s/model?#%"#
        #expect(
            html.contains(
                #"<tr data-model="\#(odd)"><td>\#(odd)<br><span class="muted">gguf; unreadable manifest: &lt;x&gt; &amp; &quot;y&quot;</span></td>"#
            ))
        #expect(
            html.contains(
                #"<form method="post" action="/api/models/odd%20%3Cb%3E&amp;%22name%22&#39;s%2Fmodel%3F%23%25/promote" class="job">"#
            ))
        #expect(!html.contains("<b>&") && !html.contains(#"odd <b>"#))
        // The loop over live tiers inside the loop over models, and sections over text (pinned) and bools (hot).
        #expect(
            html.contains(
                #"<select name="tier" aria-label="tier"><option value="">fastest with room</option><option>fast</option></select>"#
            ))
        #expect(html.contains(#"<td class="location hot">hot: fast (pinned fast)</td>"#))
        #expect(html.contains(#"<td class="location cold">cold</td>"#))
        // Shares: fsc yes/no and an fstab entry not mounted.
        #expect(
            html.contains(
                #"<tr><td>/mnt/it&#39;s &lt;nfs&gt;</td><td>nfs4</td><td>srv:/export&amp;x</td><td>yes</td></tr>"#))
        #expect(html.contains("<tr><td>/mnt/smb</td><td>cifs</td><td>srv:/export&amp;x</td><td>no</td></tr>"))
        #expect(html.contains("<td>not mounted</td></tr>\n</table>"))
        // Tiers: the live one with its meter, the other not mounted (with an escaped name).
        #expect(html.contains(#"<td><meter min="0" max="67108864" value="0">0.0%</meter> 0 B of 64.0 MiB</td>"#))
        #expect(html.contains(#"<tr id="tier-slow&quot;&lt;&#39;&gt;"><td>slow&quot;&lt;&#39;&gt;<br>"#))
        // The cache: dotted names, the usage object as a section.
        #expect(
            html.contains(
                #"cachefilesd running<br><span class="muted">/var/cache/fscache &lt;&amp;&gt; (tag mycache)</span></div>"#
            ))
        #expect(
            html.contains(
                #"<meter min="0" max="100" low="7" high="10" optimum="100" value="12.3456789">12.3%</meter> 12.3%<br><span class="muted">118 MiB of 954 MiB; culls below 7%, stops below 3%</span>"#
            ))
        #expect(
            html.contains(#"points="586.1,125.8 587.8,105.5 589.4,85.2 591.1,64.9 592.7,44.6 594.4,24.3 596.0,4.0"/>"#))
    }
}

/// Percent-decoding of URL segments and form fields, as Foundation's
/// `removingPercentEncoding` did.
@Suite struct PercentEncodingTests {
    @Test func decodesValidSequencesAndRefusesBrokenOnes() {
        #expect(PercentEncoding.decode("a%2fb%2F%41%c3%a9%C3%A9+") == "a/b/Aéé+")
        #expect(PercentEncoding.decode("%00") == "\0")
        #expect(PercentEncoding.decode("") == "")
        for broken in ["%", "%4", "%zz", "a%g1", "%FF", "%C3"] {
            #expect(PercentEncoding.decode(broken) == nil, "\(broken)")
        }
        let name = #"odd <b>&"name"'s/model?#%"#
        #expect(PercentEncoding.decode(PercentEncoding.pathSegment(name)) == name)
    }
}
