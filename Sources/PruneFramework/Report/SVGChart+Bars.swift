import Foundation

extension SVGChart {
    /// Grouped vertical bars: one group per category (e.g. layer index), one bar per series.
    ///
    /// - Parameters:
    ///   - categories: group labels along x; when they would overlap, only every 2nd, 5th, 10th…
    ///     is written (always including the first).
    ///   - series: `(name, values)` with `values[i]` belonging to `categories[i]`; missing,
    ///     NaN and infinite values draw no bar.
    ///   - yMax: top of the y axis (e.g. 1 for fractions kept); values above it are cut at the
    ///     top. `nil`, or a value that is not finite and positive, fits the axis to the data.
    /// - Returns: a standalone SVG document; one saying "no data" when nothing is drawable.
    public static func groupedBars(
        title: String, categories: [String], series: [(name: String, values: [Double])],
        yLabel: String, xLabel: String, yMax: Double? = nil, width: Int = 900, height: Int = 360
    ) -> String {
        let finite = series.flatMap { $0.values.prefix(categories.count) }.filter(\.isFinite)
        guard !categories.isEmpty, let minValue = finite.min(), let maxValue = finite.max() else {
            return noData(title: title, width: width, height: height)
        }
        let (width, height) = canvas(width, height)
        let axis = barAxis(minValue: minValue, maxValue: maxValue, yMax: yMax)
        let names = series.map(\.name)
        let layout = layout(width: width, height: height, legendNames: names, yTickLabels: axis.labels)

        var svg = SVGWriter()
        drawTitle(&svg, title, width: layout.width)
        drawYAxis(&svg, layout, axis)
        drawBars(&svg, layout, axis, categories: categories, series: series)
        drawXAxisLine(&svg, layout)
        drawCategoryLabels(&svg, layout, categories)
        drawAxisLabels(&svg, layout, xLabel: xLabel, yLabel: yLabel)
        drawLegend(&svg, layout, names: names) { svg, index, x, cy in
            svg.rect(x + 4, cy - 6, legendSwatch - 8, 12, fill: colour(index))
        }
        return svg.document(width: width, height: height, title: title)
    }

    /// The y axis: from 0 (or the lowest negative value) to `yMax`, or to the data when unset.
    static func barAxis(minValue: Double, maxValue: Double, yMax: Double?) -> ChartAxis {
        let lo = min(0, minValue)
        if let yMax, yMax.isFinite, yMax > lo {
            return ChartAxis.linearFixed(lo, yMax)
        }
        let hi = maxValue > 0 ? maxValue : (lo < 0 ? 0 : 1)
        return ChartAxis.linear(lo, hi)
    }

    private static func drawBars(_ svg: inout SVGWriter, _ layout: Layout, _ axis: ChartAxis,
                                 categories: [String], series: [(name: String, values: [Double])]) {
        let groupWidth = layout.plotWidth / Double(categories.count)
        let fill = series.count == 1 ? 0.7 : 0.82
        let barWidth = groupWidth * fill / Double(series.count)
        let gap = min(1, barWidth * 0.15)  // a hairline between neighbouring bars
        let clamp = { (v: Double) in min(max(v, axis.lo), axis.hi) }
        let baseY = layout.y(axis.fraction(clamp(0)))
        for (j, s) in series.enumerated() {
            for (i, value) in s.values.prefix(categories.count).enumerated() where value.isFinite {
                let x = layout.plotLeft + Double(i) * groupWidth + groupWidth * (1 - fill) / 2
                    + Double(j) * barWidth
                let y = layout.y(axis.fraction(clamp(value)))
                let tip = "\(s.name), \(categories[i]): \(valueLabel(value))"
                svg.rect(x + gap / 2, min(y, baseY), barWidth - gap, abs(baseY - y), fill: colour(j), title: tip)
            }
        }
    }

    /// Category labels under each group, thinned to every 1st, 2nd, 5th, 10th… when crowded.
    private static func drawCategoryLabels(_ svg: inout SVGWriter, _ layout: Layout, _ categories: [String]) {
        let groupWidth = layout.plotWidth / Double(categories.count)
        let labels = categories.map { fit($0, width: 120, fontSize: tickSize) }
        let widest = labels.map { SVGWriter.textWidth($0, fontSize: tickSize) }.max() ?? 0
        let stride = labelStride(labelWidth: widest + 8, slotWidth: groupWidth)
        for (i, label) in labels.enumerated() where i % stride == 0 {
            let x = layout.plotLeft + (Double(i) + 0.5) * groupWidth
            svg.line(x, layout.plotBottom, x, layout.plotBottom + 4, stroke: axisColour)
            svg.text(label, x: x, y: layout.plotBottom + 8 + tickSize, size: tickSize,
                     anchor: .middle, fill: labelColour)
        }
    }

    /// The smallest of 1, 2, 5, 10, 20, 50… slots that a label of `labelWidth` fits into.
    static func labelStride(labelWidth: Double, slotWidth: Double) -> Int {
        guard slotWidth > 0, labelWidth > slotWidth else { return 1 }
        var base = 1
        while true {
            for m in [1, 2, 5] where Double(m * base) * slotWidth >= labelWidth { return m * base }
            if base > 1_000_000 { return base * 10 }
            base *= 10
        }
    }
}
