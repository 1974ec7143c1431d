extension CachefilesdConfig {
    enum CodingKeys: String, CodingKey {
        case dir, tag, brun, bcull, bstop, frun, fcull, fstop, culltable, secctx, resumeThresholds, nocull
    }

    /// Every field is optional in YAML/JSON: a missing one keeps cachectl's default.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dir = try c.decodeIfPresent(String.self, forKey: .dir) ?? dir
        tag = try c.decodeIfPresent(String.self, forKey: .tag) ?? tag
        brun = try c.decodeIfPresent(Int.self, forKey: .brun) ?? brun
        bcull = try c.decodeIfPresent(Int.self, forKey: .bcull) ?? bcull
        bstop = try c.decodeIfPresent(Int.self, forKey: .bstop) ?? bstop
        frun = try c.decodeIfPresent(Int.self, forKey: .frun) ?? frun
        fcull = try c.decodeIfPresent(Int.self, forKey: .fcull) ?? fcull
        fstop = try c.decodeIfPresent(Int.self, forKey: .fstop) ?? fstop
        culltable = try c.decodeIfPresent(Int.self, forKey: .culltable)
        secctx = try c.decodeIfPresent(String.self, forKey: .secctx)
        resumeThresholds = try c.decodeIfPresent(ResumeThresholds.self, forKey: .resumeThresholds)
        nocull = try c.decodeIfPresent(Bool.self, forKey: .nocull) ?? nocull
    }
}
