import Foundation

/// One named line of `(x, y)` points for `SVGChart.lines`.
public struct ChartSeries: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]

    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }
}

/// Dependency-free SVG charts for pruning reports: grouped bars and line charts.
///
/// Each function returns a standalone SVG 1.1 document (`xmlns`, `viewBox`, a `<title>`) that
/// browsers, `rsvg-convert` and Markdown viewers display as is. Charts have a title, axis labels,
/// 1-2-5 ticks with gridlines, a legend, and the Okabe–Ito colour-blind-safe palette. All text is
/// XML-escaped. Non-finite values are skipped; with nothing left to draw the chart says "no data".
/// Output is deterministic: the same input gives the same bytes.
public enum SVGChart {
    /// Okabe & Ito (2008) colours, ordered for contrast on white; yellow comes last.
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00",
                          "#CC79A7", "#56B4E9", "#000000", "#F0E442"]

    static func colour(_ index: Int) -> String { palette[index % palette.count] }

    static let axisColour = "#444444"
    static let gridColour = "#e3e3e3"
    static let minorGridColour = "#f2f2f2"
    static let labelColour = "#222222"
    static let mutedColour = "#666666"

    static let titleSize = 16.0
    static let labelSize = 13.0
    static let tickSize = 11.0
    static let legendSize = 12.0

    /// Canvas sizes below this are raised to it, so margins always leave room for a plot.
    static let minimumSize = (width: 240, height: 180)

    static func canvas(_ width: Int, _ height: Int) -> (width: Int, height: Int) {
        (max(width, minimumSize.width), max(height, minimumSize.height))
    }

    // MARK: Layout

    /// Where the plot area and the legend entries sit on the canvas.
    struct Layout {
        var width: Double
        var height: Double
        var plotLeft: Double
        var plotTop: Double
        var plotRight: Double
        var plotBottom: Double
        /// Legend entries as (series index, left edge, baseline).
        var legend: [(index: Int, x: Double, y: Double)]

        var plotWidth: Double { plotRight - plotLeft }
        var plotHeight: Double { plotBottom - plotTop }
        func x(_ fraction: Double) -> Double { plotLeft + fraction * plotWidth }
        func y(_ fraction: Double) -> Double { plotBottom - fraction * plotHeight }
    }

    static let legendSwatch = 22.0
    static let legendRowHeight = 18.0

    /// Lays out title, legend rows (wrapping to the canvas width), plot and axis-label margins.
    static func layout(width: Int, height: Int, legendNames: [String], yTickLabels: [String]) -> Layout {
        let w = Double(width), h = Double(height)
        var entries: [(index: Int, x: Double, y: Double)] = []
        var x = 0.0, row = 0
        let available = w - 40
        for (i, name) in legendNames.enumerated() {
            let entryWidth = legendSwatch + 6 + SVGWriter.textWidth(name, fontSize: legendSize) + 18
            if x > 0 && x + entryWidth > available { x = 0; row += 1 }
            entries.append((i, x, Double(row)))
            x += entryWidth
        }
        // Centre each legend row under the title.
        var rowWidths = [Double](repeating: 0, count: row + 1)
        for (i, e) in entries.enumerated() {
            let name = legendNames[i]
            rowWidths[Int(e.y)] = e.x + legendSwatch + 6 + SVGWriter.textWidth(name, fontSize: legendSize)
        }
        let legendTop = 48.0
        let legend = entries.map { e in
            (e.index, (w - rowWidths[Int(e.y)]) / 2 + e.x, legendTop + e.y * legendRowHeight)
        }
        let top = legendNames.isEmpty ? 40 : legendTop + Double(row) * legendRowHeight + 16
        let tickWidth = yTickLabels.map { SVGWriter.textWidth($0, fontSize: tickSize) }.max() ?? 0
        let left = 12 + labelSize + 10 + tickWidth + 8
        let bottom = h - (10 + labelSize + 8 + tickSize + 10)
        return Layout(width: w, height: h, plotLeft: left, plotTop: top,
                      plotRight: w - 24, plotBottom: max(bottom, top + 40), legend: legend)
    }

    // MARK: Shared drawing

    /// `text`, cut with an ellipsis so that it fits in `width` at `fontSize`.
    static func fit(_ text: String, width: Double, fontSize: Double) -> String {
        let maxChars = max(1, Int(width / (fontSize * 0.6)))
        if text.count <= maxChars { return text }
        return String(text.prefix(max(1, maxChars - 1))) + "…"
    }

    static func drawTitle(_ svg: inout SVGWriter, _ title: String, width: Double) {
        svg.text(fit(title, width: width - 20, fontSize: titleSize), x: width / 2, y: 26,
                 size: titleSize, anchor: .middle, bold: true, fill: labelColour)
    }

    /// Axis titles: x centred under the plot, y rotated along the left edge.
    static func drawAxisLabels(_ svg: inout SVGWriter, _ layout: Layout, xLabel: String, yLabel: String) {
        svg.text(fit(xLabel, width: layout.plotWidth, fontSize: labelSize),
                 x: layout.x(0.5), y: layout.height - 12, size: labelSize, anchor: .middle, fill: labelColour)
        let cx = 12 + labelSize - 2, cy = layout.y(0.5)
        svg.text(fit(yLabel, width: layout.plotHeight, fontSize: labelSize),
                 x: cx, y: cy, size: labelSize, anchor: .middle, fill: labelColour, rotate: -90)
    }

    /// Horizontal gridlines (faint for minor ticks) and labels for each y tick, then the y axis line.
    static func drawYAxis(_ svg: inout SVGWriter, _ layout: Layout, _ axis: ChartAxis) {
        for value in axis.minorTicks {
            let y = layout.y(axis.fraction(value))
            svg.line(layout.plotLeft, y, layout.plotRight, y, stroke: minorGridColour)
        }
        for (value, label) in zip(axis.ticks, axis.labels) {
            let y = layout.y(axis.fraction(value))
            svg.line(layout.plotLeft, y, layout.plotRight, y, stroke: gridColour)
            svg.line(layout.plotLeft - 5, y, layout.plotLeft, y, stroke: axisColour)
            svg.text(label, x: layout.plotLeft - 8, y: y + 4, size: tickSize, anchor: .end, fill: labelColour)
        }
        svg.line(layout.plotLeft, layout.plotTop, layout.plotLeft, layout.plotBottom, stroke: axisColour)
    }

    /// The x axis line along the bottom of the plot.
    static func drawXAxisLine(_ svg: inout SVGWriter, _ layout: Layout) {
        svg.line(layout.plotLeft, layout.plotBottom, layout.plotRight, layout.plotBottom, stroke: axisColour)
    }

    /// Legend entries, each a swatch drawn by `swatch(svg, index, x, centreY)` and the name.
    static func drawLegend(_ svg: inout SVGWriter, _ layout: Layout, names: [String],
                           swatch: (inout SVGWriter, Int, Double, Double) -> Void) {
        for entry in layout.legend {
            swatch(&svg, entry.index, entry.x, entry.y - 4)
            svg.text(names[entry.index], x: entry.x + legendSwatch + 6, y: entry.y,
                     size: legendSize, fill: labelColour)
        }
    }

    /// A chart with only its title and a centred "no data" note, for empty or all-NaN input.
    static func noData(title: String, width: Int, height: Int) -> String {
        let (width, height) = canvas(width, height)
        var svg = SVGWriter()
        let w = Double(width), h = Double(height)
        drawTitle(&svg, title, width: w)
        svg.element("rect", [("x", "20"), ("y", "40"), ("width", SVGWriter.number(w - 40)),
                             ("height", SVGWriter.number(h - 60)), ("fill", "none"),
                             ("stroke", gridColour), ("stroke-dasharray", "4 4")])
        svg.text("no data", x: w / 2, y: (h + 20) / 2 + 5, size: 14, anchor: .middle, fill: mutedColour)
        return svg.document(width: width, height: height, title: title)
    }

    /// A value for a tooltip: up to four decimals below 1, fewer above, `1.5e7` style when huge.
    static func valueLabel(_ value: Double) -> String {
        let a = abs(value)
        if a >= 1e6 || (a < 1e-3 && a > 0) { return ChartAxis.scientificLabel(value) }
        let decimals = a >= 100 ? 1 : a >= 1 ? 3 : 4
        return SVGWriter.fixed(value, decimals: decimals, trimZeros: true)
    }
}
