/// The one redaction of secrets in mount options. Every way options leave the
/// process goes through ``redact(_:)``: text and `--json` output (`mounts`,
/// `status`, `fsc`), fstab diffs (`fsc --diff`, `plan`/`apply --diff`, so the
/// Ansible module's diff too), error messages and the mount helpers' stderr.
///
/// What is a secret (mount.cifs(8)): the value of `password=` and its alias
/// `pass=`, of `password2=` (the second password used during key rotation),
/// and the part after `%` in `username=user%password` (alias `user=`). Ceph's
/// `secret=` is masked too. Names match without regard to case, as the CIFS
/// client's option parser does. A CIFS password may hold a comma written as
/// `,,`; that stays part of the masked value.
public enum MountSecrets {
    public static let mask = "***"

    /// Options whose whole value is a secret.
    static let secretNames: Set<String> = ["password", "pass", "password2", "secret"]
    /// Options whose value may carry `user%password`.
    static let userNames: Set<String> = ["username", "user"]

    /// `text` with every secret option value replaced by `***`. Works on an
    /// option string, an fstab line or file, a diff, or a message: an option is
    /// recognised where a name starts the text or follows `,`, whitespace, a
    /// quote or a bracket.
    public static func redact(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard let spans = secretSpans(bytes), !spans.isEmpty else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var position = 0
        for span in spans {
            out.append(contentsOf: bytes[position..<span.lowerBound])
            out.append(contentsOf: mask.utf8)
            position = span.upperBound
        }
        out.append(contentsOf: bytes[position...])
        return String(decoding: out, as: UTF8.self)
    }

    /// True when `options` hold a secret that would need redacting.
    public static func containsSecret(_ options: String) -> Bool {
        !(secretSpans(Array(options.utf8)) ?? []).isEmpty
    }

    /// Byte ranges of secret values, in order.
    static func secretSpans(_ bytes: [UInt8]) -> [Range<Int>]? {
        var spans: [Range<Int>] = []
        var i = 0
        while i < bytes.count {
            guard i == 0 || isBoundary(bytes[i - 1]), isNameByte(bytes[i]) else {
                i += 1
                continue
            }
            var end = i
            while end < bytes.count && isNameByte(bytes[end]) { end += 1 }
            guard end < bytes.count, bytes[end] == UInt8(ascii: "=") else {
                i = max(end, i + 1)
                continue
            }
            let name = String(decoding: bytes[i..<end], as: UTF8.self).lowercased()
            let valueStart = end + 1
            if secretNames.contains(name) {
                let valueEnd = endOfValue(bytes, from: valueStart, doubledCommaEscapes: true)
                if valueEnd > valueStart { spans.append(valueStart..<valueEnd) }
                i = valueEnd
            } else if userNames.contains(name) {
                let valueEnd = endOfValue(bytes, from: valueStart, doubledCommaEscapes: false)
                if let percent = bytes[valueStart..<valueEnd].firstIndex(of: UInt8(ascii: "%")), percent + 1 < valueEnd
                {
                    let quoted = bytes[valueStart] == UInt8(ascii: "\"") && bytes[valueEnd - 1] == UInt8(ascii: "\"")
                    let secretEnd = quoted && valueEnd - 1 > percent + 1 ? valueEnd - 1 : valueEnd
                    spans.append(percent + 1..<secretEnd)
                }
                i = valueEnd
            } else {
                i = valueStart
            }
        }
        return spans
    }

    /// Where an option value ends: a closing quote for a quoted value, else the
    /// next comma (`,,` is an escaped comma inside CIFS passwords), whitespace or quote.
    static func endOfValue(_ bytes: [UInt8], from start: Int, doubledCommaEscapes: Bool) -> Int {
        var j = start
        if j < bytes.count && bytes[j] == UInt8(ascii: "\"") {
            j += 1
            while j < bytes.count && bytes[j] != UInt8(ascii: "\"") && bytes[j] != UInt8(ascii: "\n") { j += 1 }
            return j < bytes.count && bytes[j] == UInt8(ascii: "\"") ? j + 1 : j
        }
        while j < bytes.count {
            let c = bytes[j]
            if c == UInt8(ascii: ",") {
                if doubledCommaEscapes && j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: ",") {
                    j += 2
                    continue
                }
                break
            }
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r")
                || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'")
            {
                break
            }
            j += 1
        }
        return j
    }

    static func isNameByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    static func isBoundary(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: ","), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
            UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"),
            UInt8(ascii: ";"), UInt8(ascii: ":"):
            true
        default:
            false
        }
    }
}
