/// Minimal SVG element writer used by `SVGChart`: escaping, fixed-precision numbers, elements.
///
/// Everything here is deterministic: numbers go through `SVGWriter.number`, which never consults
/// the locale, and attributes are written in the order given, so the same calls give the same
/// bytes on every platform.
struct SVGWriter {
    private(set) var body = ""

    /// Font stack for all text; DejaVu Sans is what Linux renderers usually have.
    static let fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"

    /// Approximate advance width of one character at `fontSize`, for layout estimates only.
    static func textWidth(_ text: String, fontSize: Double) -> Double {
        Double(text.count) * fontSize * 0.6
    }

    // MARK: Escaping and numbers

    /// Escapes `&`, `<`, `>`, `"` and `'`, and replaces control characters that XML 1.0 forbids
    /// (everything below U+0020 except tab, newline and carriage return) with a space.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += " "
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A coordinate with at most two decimals and no trailing zeros (`12.5`, `300`, `-0.25`).
    /// Non-finite values become `0`; magnitudes are capped at 1e9 so the integer maths cannot trap.
    static func number(_ value: Double) -> String {
        fixed(value, decimals: 2, trimZeros: true)
    }

    /// `value` with exactly `decimals` decimals (0...9), rounded half away from zero, never `-0`.
    static func fixed(_ value: Double, decimals: Int, trimZeros: Bool = false) -> String {
        guard value.isFinite else { return "0" }
        let d = max(0, min(9, decimals))
        var scale: Int64 = 1
        for _ in 0..<d { scale *= 10 }
        let capped = max(-1e9, min(1e9, value))
        let scaled = Int64((capped * Double(scale)).rounded(.toNearestOrAwayFromZero))
        let magnitude = scaled.magnitude
        var text = String(magnitude / UInt64(scale))
        if d > 0 {
            var frac = String(magnitude % UInt64(scale))
            frac = String(repeating: "0", count: d - frac.count) + frac
            if trimZeros { while frac.hasSuffix("0") { frac.removeLast() } }
            if !frac.isEmpty { text += "." + frac }
        }
        return scaled < 0 ? "-" + text : text
    }

    // MARK: Elements

    /// Appends raw markup; callers escape any text they put in it.
    mutating func raw(_ markup: String) {
        body += markup
        body += "\n"
    }

    /// `<tag a="v" .../>` or, with `title`, `<tag ...><title>…</title></tag>` (a hover tooltip).
    mutating func element(_ tag: String, _ attributes: [(String, String)], title: String? = nil) {
        var s = "<" + tag
        for (name, value) in attributes { s += " \(name)=\"\(SVGWriter.escape(value))\"" }
        if let title {
            s += "><title>\(SVGWriter.escape(title))</title></\(tag)>"
        } else {
            s += "/>"
        }
        raw(s)
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double,
                       stroke: String, width: Double = 1, dash: String? = nil) {
        var attrs = [("x1", SVGWriter.number(x1)), ("y1", SVGWriter.number(y1)),
                     ("x2", SVGWriter.number(x2)), ("y2", SVGWriter.number(y2)),
                     ("stroke", stroke), ("stroke-width", SVGWriter.number(width))]
        if let dash { attrs.append(("stroke-dasharray", dash)) }
        element("line", attrs)
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String,
                       stroke: String? = nil, title: String? = nil) {
        var attrs = [("x", SVGWriter.number(x)), ("y", SVGWriter.number(y)),
                     ("width", SVGWriter.number(max(0, w))), ("height", SVGWriter.number(max(0, h))),
                     ("fill", fill)]
        if let stroke { attrs += [("stroke", stroke), ("stroke-width", "1")] }
        element("rect", attrs, title: title)
    }

    enum Anchor: String { case start, middle, end }

    /// A text element; `rotate` turns it (in degrees) about its anchor point.
    mutating func text(_ content: String, x: Double, y: Double, size: Double = 12,
                       anchor: Anchor = .start, bold: Bool = false, fill: String = "#222222",
                       rotate: Double? = nil) {
        var s = "<text x=\"\(SVGWriter.number(x))\" y=\"\(SVGWriter.number(y))\""
        s += " font-size=\"\(SVGWriter.number(size))\" text-anchor=\"\(anchor.rawValue)\""
        s += " fill=\"\(fill)\""
        if bold { s += " font-weight=\"bold\"" }
        if let rotate {
            s += " transform=\"rotate(\(SVGWriter.number(rotate)) \(SVGWriter.number(x)) \(SVGWriter.number(y)))\""
        }
        s += ">\(SVGWriter.escape(content))</text>"
        raw(s)
    }

    /// The complete standalone document around the body written so far.
    func document(width: Int, height: Int, title: String) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\""
        s += " width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\""
        s += " font-family=\"\(SVGWriter.escape(SVGWriter.fontFamily))\">\n"
        s += "<title>\(SVGWriter.escape(title))</title>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
        s += body
        s += "</svg>\n"
        return s
    }
}
