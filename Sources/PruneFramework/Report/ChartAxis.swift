import Foundation

/// A numeric axis for `SVGChart`: a domain, "nice" tick values (1-2-5 steps) and their labels.
///
/// Linear axes widen the data range to whole steps (`0.3...7.3` becomes `0...8` with step 2);
/// log axes widen to the nearest 1, 2 or 5 times a power of ten. Tick values are computed as
/// integer multiples of the step, never by repeated addition, so they do not drift.
struct ChartAxis: Equatable {
    var lo: Double
    var hi: Double
    var ticks: [Double]
    var labels: [String]
    var isLog = false
    /// Unlabelled values for faint gridlines (the 2s and 5s of a log axis labelled by decades).
    var minorTicks: [Double] = []

    /// Where `value` falls along the axis, 0 at `lo` and 1 at `hi` (outside 0...1 when outside).
    func fraction(_ value: Double) -> Double {
        if isLog {
            return (log10(value) - log10(lo)) / (log10(hi) - log10(lo))
        }
        return (value - lo) / (hi - lo)
    }

    // MARK: Linear

    /// A linear axis covering `lo...hi`, widened outwards to whole multiples of a 1-2-5 step.
    static func linear(_ lo: Double, _ hi: Double, target: Int = 5) -> ChartAxis {
        let (a, b) = widenDegenerate(lo, hi)
        let step = niceStep((b - a) / Double(max(1, target)))
        let first = (a / step.value + 1e-9).rounded(.down)
        let last = (b / step.value - 1e-9).rounded(.up)
        return steppedAxis(first: first, last: last, step: step, domain: nil)
    }

    /// A linear axis with exactly the domain `lo...hi` and 1-2-5 ticks that fall inside it.
    static func linearFixed(_ lo: Double, _ hi: Double, target: Int = 5) -> ChartAxis {
        let (a, b) = widenDegenerate(lo, hi)
        let step = niceStep((b - a) / Double(max(1, target)))
        let first = (a / step.value - 1e-9).rounded(.up)
        let last = (b / step.value + 1e-9).rounded(.down)
        return steppedAxis(first: first, last: last, step: step, domain: (a, b))
    }

    /// A 1-2-5 step, kept as `multiple × 10^exponent` so tick values can be computed exactly.
    struct Step { var multiple: Double; var exponent: Int
        var value: Double { multiple * pow(10, Double(exponent)) }
    }

    /// The 1-2-5 step nearest to `raw` (rounding, so 2.4 → 2 and 3.1 → 5).
    static func niceStep(_ raw: Double) -> Step {
        guard raw.isFinite, raw > 0 else { return Step(multiple: 1, exponent: 0) }
        var exponent = Int(log10(raw).rounded(.down))
        let normalized = raw / pow(10, Double(exponent))
        let multiple: Double
        switch normalized {
        case ..<1.5: multiple = 1
        case ..<3: multiple = 2
        case ..<7: multiple = 5
        default: multiple = 1; exponent += 1
        }
        return Step(multiple: multiple, exponent: exponent)
    }

    /// `i × step` computed as `i × multiple × 10^e` or `i × multiple / 10^-e`, which is exact for
    /// small `i` (so `3 × 0.1` gives the double nearest 0.3, not 0.30000000000000004).
    static func multiple(_ i: Double, of step: Step) -> Double {
        if step.exponent >= 0 { return i * step.multiple * pow(10, Double(step.exponent)) }
        return i * step.multiple / pow(10, Double(-step.exponent))
    }

    private static func steppedAxis(first: Double, last: Double, step: Step,
                                    domain: (Double, Double)?) -> ChartAxis {
        var ticks: [Double] = []
        if first <= last {
            var i = first
            while i <= last, ticks.count < 1000 { ticks.append(multiple(i, of: step)); i += 1 }
        }
        let lo = domain?.0 ?? ticks.first ?? 0
        let hi = domain?.1 ?? ticks.last ?? 1
        let decimals = max(0, -Int((log10(step.value) + 1e-9).rounded(.down)))
        let scientific = ticks.contains { abs($0) >= 1e6 } || decimals > 5
        let labels = ticks.map { scientific ? scientificLabel($0) : SVGWriter.fixed($0, decimals: decimals) }
        return ChartAxis(lo: lo, hi: hi, ticks: ticks, labels: labels)
    }

    /// Turns an empty or non-finite range into one a scale can divide by.
    private static func widenDegenerate(_ lo: Double, _ hi: Double) -> (Double, Double) {
        guard lo.isFinite, hi.isFinite else { return (0, 1) }
        var (a, b) = (min(lo, hi), max(lo, hi))
        if b - a <= abs(b) * 1e-12 {
            let pad = a == 0 ? 1 : abs(a) * 0.5
            a -= pad; b += pad
        }
        return (a, b)
    }

    // MARK: Log

    /// A base-10 log axis covering `lo...hi` (both must be > 0), widened to 1-2-5 × 10^k values.
    ///
    /// Over more than two decades the ticks are the powers of ten inside the domain plus its
    /// ends (over more than six, every n-th power, with the domain widened to powers of ten);
    /// over fewer, the 1-2-5 values inside; when that leaves fewer than three, linear 1-2-5 steps.
    static func log(_ lo: Double, _ hi: Double) -> ChartAxis {
        var (a, b) = (min(lo, hi), max(lo, hi))
        if !(a > 0 && a.isFinite && b.isFinite) { (a, b) = (1, 10) }
        if b / a < 1.01 { a /= 2; b *= 2 }
        let decadeLo = Int(log10(a).rounded(.down)), decadeHi = Int(log10(b).rounded(.up))
        if decadeHi - decadeLo > 6 {
            let stride = Int((Double(decadeHi - decadeLo) / 6).rounded(.up))
            let ks = Swift.stride(from: decadeLo, through: decadeHi + stride - 1, by: stride)
            let ticks = ks.map { pow(10, Double($0)) }
            return ChartAxis(lo: ticks.first ?? 1, hi: ticks.last ?? 10, ticks: ticks,
                             labels: ks.map { logLabel(1, $0) }, isLog: true)
        }
        var candidates: [(value: Double, isPower: Bool, label: String)] = []
        for k in (decadeLo - 1)...decadeHi {
            for m in [1.0, 2, 5] { candidates.append((m * pow(10, Double(k)), m == 1, logLabel(m, k))) }
        }
        let domainLo = candidates.last { $0.value <= a * (1 + 1e-12) }?.value ?? a
        let domainHi = candidates.first { $0.value >= b * (1 - 1e-12) }?.value ?? b
        let inside = candidates.filter { $0.value >= domainLo * (1 - 1e-12) && $0.value <= domainHi * (1 + 1e-12) }
        if log10(domainHi / domainLo) > 2.01 {
            return decadeLabelled(inside, lo: domainLo, hi: domainHi)
        }
        if inside.count >= 3 {
            return ChartAxis(lo: domainLo, hi: domainHi, ticks: inside.map(\.value),
                             labels: inside.map(\.label), isLog: true)
        }
        var axis = linearFixed(domainLo, domainHi)
        axis.isLog = true
        return axis
    }

    /// Labels the powers of ten, and a domain end when it is at least half a decade from them;
    /// the other 1-2-5 values become minor ticks.
    private static func decadeLabelled(_ values: [(value: Double, isPower: Bool, label: String)],
                                       lo: Double, hi: Double) -> ChartAxis {
        let powers = values.filter(\.isPower).map(\.value)
        let farFromPowers = { (v: Double) in powers.allSatisfy { abs(log10(v / $0)) >= 0.5 } }
        var axis = ChartAxis(lo: lo, hi: hi, ticks: [], labels: [], isLog: true)
        for (i, c) in values.enumerated() {
            let isEnd = i == 0 || i == values.count - 1
            if c.isPower || (isEnd && farFromPowers(c.value)) {
                axis.ticks.append(c.value); axis.labels.append(c.label)
            } else {
                axis.minorTicks.append(c.value)
            }
        }
        return axis
    }

    /// Label for `m × 10^k`: plain decimals between 0.0001 and 100000, else `2e6` style.
    private static func logLabel(_ m: Double, _ k: Int) -> String {
        if k >= 6 || k < -4 { return SVGWriter.fixed(m, decimals: 0) + "e" + String(k) }
        return SVGWriter.fixed(m * pow(10, Double(k)), decimals: max(0, -k))
    }

    /// `2.5e6` style: a mantissa with at most two decimals and an integer exponent.
    static func scientificLabel(_ value: Double) -> String {
        guard value.isFinite, value != 0 else { return "0" }
        var exponent = Int(log10(abs(value)).rounded(.down))
        var mantissa = value / pow(10, Double(exponent))
        if abs(mantissa) >= 9.995 { mantissa /= 10; exponent += 1 }
        return SVGWriter.fixed(mantissa, decimals: 2, trimZeros: true) + "e" + String(exponent)
    }
}
