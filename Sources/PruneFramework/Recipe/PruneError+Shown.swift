extension PruneError {
    /// `value` made safe to quote in a one-line message: control characters escaped (`\u{0}`,
    /// `\u{a}`), cut after `limit` characters with "…" and the full length.
    ///
    /// A recipe can hold a 10 MB string; its error message quotes the first hundred characters.
    /// Works in time proportional to `limit`, not to the length of `value` (unless it is cut,
    /// when the length is counted in UTF-8 bytes, which is constant time for native strings).
    public static func shown(_ value: String, limit: Int = 100) -> String {
        var out = ""
        var n = 0
        for c in value.unicodeScalars {
            if n >= limit {
                return out + "… (\(value.utf8.count) bytes)"
            }
            let v = c.value
            if v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 {
                out += "\\u{\(String(v, radix: 16))}"
            } else {
                out.unicodeScalars.append(c)
            }
            n += 1
        }
        return out
    }
}
