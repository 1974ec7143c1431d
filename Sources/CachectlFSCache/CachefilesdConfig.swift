import CachectlSystem

/// What `/etc/cachefilesd.conf` says: where the cache lives and when it culls.
/// The CLI (`cachectl cache setup`) and the YAML config (`cachectl apply`)
/// both build one of these and call ``validate()``: one set of rules.
public struct CachefilesdConfig: Sendable, Equatable, Codable {
    /// The cache directory (absolute); on a local filesystem with user xattrs.
    public var dir: String = "/var/cache/fscache"
    /// Names the cache to FS-Cache (several caches need different tags).
    public var tag: String = "cachectl"
    /// Percent free space: cache freely above brun, cull below bcull, stop below bstop.
    public var brun: Int = 10
    public var bcull: Int = 7
    public var bstop: Int = 3
    /// The same for free files (inodes).
    public var frun: Int = 10
    public var fcull: Int = 7
    public var fstop: Int = 3
    /// log2 of the cull table size, 12...20 (cachefilesd's default is 12).
    public var culltable: Int?
    /// LSM security context the kernel uses to access the cache (SELinux).
    public var secctx: String?
    /// `resume_thresholds <blocks> <files>`; "-" leaves one out.
    public var resumeThresholds: ResumeThresholds?
    /// Never cull (the cache only grows up to the limits).
    public var nocull: Bool = false

    public init() {}

    /// `resume_thresholds <blocks> <files>`: nil is cachefilesd's `-`.
    public struct ResumeThresholds: Sendable, Equatable, Codable, CustomStringConvertible {
        public var blocks: UInt64?
        public var files: UInt64?

        public init(blocks: UInt64?, files: UInt64?) {
            self.blocks = blocks
            self.files = files
        }

        /// Parses `BLOCKS FILES` or `BLOCKS,FILES`, each a number or `-`.
        public init?(parsing text: String) {
            let parts = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            guard parts.count == 2 else { return nil }
            func number(_ s: String) -> UInt64?? { s == "-" ? .some(nil) : UInt64(s).map { .some($0) } }
            guard let blocks = number(parts[0]), let files = number(parts[1]) else { return nil }
            self.init(blocks: blocks, files: files)
        }

        public var description: String {
            "\(blocks.map(String.init) ?? "-") \(files.map(String.init) ?? "-")"
        }
    }

    /// A setting that cannot be used, named by its field (as in the CLI and the YAML).
    static func invalid(_ field: String, _ value: String, _ reason: String) -> CachectlError {
        .usage([.key(field)], "invalid \(field) \(value.debugDescription): \(reason)")
    }

    /// Checks every rule; nothing may be written or started with a config that fails.
    public func validate() throws(CachectlError) {
        func bad(_ field: String, _ value: Any, _ reason: String) -> CachectlError {
            Self.invalid(field, "\(value)", reason)
        }
        try Self.checkLine("dir", dir)
        guard dir.hasPrefix("/") else { throw bad("dir", dir, "must be an absolute path") }
        guard dir != "/" else { throw bad("dir", dir, "must not be the root directory") }
        guard !dir.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw bad("dir", dir, "must not contain . or .. components")
        }
        guard !dir.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw bad("dir", dir, "must not contain spaces (cachefilesd splits its arguments on them)")
        }
        try Self.checkToken("tag", tag)
        guard tag.utf8.count <= 64 else { throw bad("tag", tag, "must be at most 64 bytes") }
        if let secctx { try Self.checkToken("secctx", secctx) }
        for (prefix, run, cull, stop) in [("b", brun, bcull, bstop), ("f", frun, fcull, fstop)] {
            guard 0 <= stop, stop < cull, cull < run, run < 100 else {
                let field = !(0 <= stop) ? "\(prefix)stop" : !(stop < cull) ? "\(prefix)cull" : "\(prefix)run"
                let value = field.hasSuffix("stop") ? stop : field.hasSuffix("cull") ? cull : run
                throw bad(
                    field, value,
                    "need 0 <= \(prefix)stop < \(prefix)cull < \(prefix)run < 100 "
                        + "(got \(prefix)stop=\(stop), \(prefix)cull=\(cull), \(prefix)run=\(run))")
            }
        }
        if let culltable, !(12...20).contains(culltable) {
            throw bad("culltable", culltable, "must be 12...20 (log2 of the table size)")
        }
    }

    /// No character below 0x20 (newline, tab, CR) or DEL, which could end a line.
    static func checkLine(_ field: String, _ value: String) throws(CachectlError) {
        guard !value.isEmpty else { throw invalid(field, value, "must not be empty") }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw invalid(field, value, "must not contain newlines or control characters")
        }
    }

    /// One word: a line-safe value without spaces.
    static func checkToken(_ field: String, _ value: String) throws(CachectlError) {
        try checkLine(field, value)
        if value.contains(" ") { throw invalid(field, value, "must be one word (no spaces)") }
    }

    /// The file's text, from the embedded template. Validates first.
    public func render(template: Template = EmbeddedTemplates.cachefilesdConf) throws -> String {
        try validate()
        return try template.render([
            "dir": dir, "tag": tag,
            "brun": String(brun), "bcull": String(bcull), "bstop": String(bstop),
            "frun": String(frun), "fcull": String(fcull), "fstop": String(fstop),
            "culltable": culltable.map(String.init),
            "secctx": secctx,
            "resume_thresholds": resumeThresholds?.description,
            "nocull": nocull ? "true" : nil,
        ])
    }

    /// Reads an existing cachefilesd.conf (ours or hand-written) leniently:
    /// unknown commands are skipped, missing ones keep cachefilesd's defaults.
    public static func parse(_ text: String) -> CachefilesdConfig {
        var config = CachefilesdConfig()
        // cachefilesd's own defaults when a command is absent (cachefilesd.conf(5)).
        config.tag = "CacheFiles"
        (config.brun, config.bcull, config.bstop) = (7, 5, 1)
        (config.frun, config.fcull, config.fstop) = (7, 5, 1)
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingWhitespace()
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let parts = line.split(separator: " ", maxSplits: 1).map { String($0).trimmingWhitespace() }
            let command = parts[0]
            let argument = parts.count > 1 ? parts[1] : ""
            let percent = Int(argument.hasSuffix("%") ? String(argument.dropLast()) : argument)
            switch command {
            case "dir": config.dir = argument
            case "tag": config.tag = argument
            case "secctx": config.secctx = argument
            case "culltable": config.culltable = Int(argument)
            case "nocull": config.nocull = true
            case "resume_thresholds": config.resumeThresholds = ResumeThresholds(parsing: argument)
            case "brun": config.brun = percent ?? config.brun
            case "bcull": config.bcull = percent ?? config.bcull
            case "bstop": config.bstop = percent ?? config.bstop
            case "frun": config.frun = percent ?? config.frun
            case "fcull": config.fcull = percent ?? config.fcull
            case "fstop": config.fstop = percent ?? config.fstop
            default: continue
            }
        }
        return config
    }
}
