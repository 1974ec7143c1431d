import CCachectlMount
import Glibc

/// Mount option strings (`rw,vers=4.2,fsc`) read and edited with libmount's
/// `mnt_optstr_*` functions, so quoting (`context="a,b"`) and `name=value`
/// pairs follow exactly the rules mount(8) uses.
public enum OptionString {
    /// True when `name` appears, with or without a value (`fsc` or `fsc=models`).
    public static func contains(_ options: String, _ name: String) -> Bool {
        var value: UnsafeMutablePointer<CChar>?
        var size = 0
        return cachectl_mnt_optstr_get_option(options, name, &value, &size) == 0
    }

    /// The value of `name=value`; `.some(nil)` for a bare flag; nil when absent.
    public static func value(_ options: String, _ name: String) -> String?? {
        var value: UnsafeMutablePointer<CChar>?
        var size = 0
        guard cachectl_mnt_optstr_get_option(options, name, &value, &size) == 0 else { return nil }
        guard let value, size > 0 else { return .some(nil) }
        let bytes = UnsafeRawBufferPointer(start: value, count: size)
        return .some(String(decoding: bytes, as: UTF8.self))
    }

    /// Sets `name` (or `name=value`), appending it when absent.
    public static func setting(_ options: String, _ name: String, to value: String? = nil) -> String {
        edit(options) { cachectl_mnt_optstr_set_option($0, name, value) }
    }

    /// Removes every occurrence of `name` (with any value).
    public static func removing(_ options: String, _ name: String) -> String {
        var result = options
        while contains(result, name) {
            let next = edit(result) { cachectl_mnt_optstr_remove_option($0, name) }
            if next == result { break }
            result = next
        }
        return result
    }

    /// The options as a list, in order (`name` or `name=value`).
    public static func split(_ options: String) -> [String] {
        var items: [String] = []
        var current = ""
        var quoted = false
        for c in options {
            if c == "\"" { quoted.toggle() }
            if c == "," && !quoted {
                if !current.isEmpty { items.append(current) }
                current = ""
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { items.append(current) }
        return items
    }

    /// The options with secret values masked (`password=***`): see ``MountSecrets``.
    public static func redacted(_ options: String) -> String {
        MountSecrets.redact(options)
    }

    /// Runs a libmount editor on a malloc'd copy (they realloc/free it) and returns the result.
    private static func edit(_ options: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32)
        -> String
    {
        var buffer: UnsafeMutablePointer<CChar>? = options.isEmpty ? nil : strdup(options)
        defer { free(buffer) }
        guard body(&buffer) >= 0 else { return options }
        guard let buffer else { return "" }
        return String(cString: buffer)
    }
}
