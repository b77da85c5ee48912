import Foundation

extension SVGChart {
    /// Series with this many points or fewer get a marker at every point.
    static let markerLimit = 40

    /// Line chart with markers and a legend, for loss curves or perplexity against sparsity.
    ///
    /// - Parameters:
    ///   - series: points are joined in the order given. Points with a NaN or infinite
    ///     coordinate (and, with `logY`, a y that is not positive) are skipped, and the line
    ///     joins their neighbours.
    ///   - logY: base-10 log scale for y, for curves spanning orders of magnitude.
    /// - Returns: a standalone SVG document; one saying "no data" when nothing is drawable.
    ///   Each series has its own colour and marker shape; markers are drawn when a series has
    ///   at most `markerLimit` points (long curves would drown in them).
    public static func lines(
        title: String, series: [ChartSeries], xLabel: String, yLabel: String, logY: Bool = false,
        width: Int = 720, height: Int = 400
    ) -> String {
        let kept = series.map { s in
            s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        }
        let all = kept.joined()
        guard let minX = all.map(\.x).min(), let maxX = all.map(\.x).max(),
              let minY = all.map(\.y).min(), let maxY = all.map(\.y).max() else {
            return noData(title: title, width: width, height: height)
        }
        let (width, height) = canvas(width, height)
        let xAxis = ChartAxis.linear(minX, maxX, target: 6)
        let yAxis = logY ? ChartAxis.log(minY, maxY) : ChartAxis.linear(minY, maxY)
        let names = series.map(\.name)
        let layout = layout(width: width, height: height, legendNames: names, yTickLabels: yAxis.labels)

        var svg = SVGWriter()
        drawTitle(&svg, title, width: layout.width)
        drawXTicks(&svg, layout, xAxis)
        drawYAxis(&svg, layout, yAxis)
        drawXAxisLine(&svg, layout)
        for (j, points) in kept.enumerated() {
            let placed = points.map { p in
                (layout.x(xAxis.fraction(p.x)), layout.y(yAxis.fraction(p.y)), p)
            }
            drawPolyline(&svg, placed.map { ($0.0, $0.1) }, index: j)
            guard points.count <= markerLimit else { continue }
            for (x, y, p) in placed {
                let tip = "\(names[j]): (\(valueLabel(p.x)), \(valueLabel(p.y)))"
                drawMarker(&svg, index: j, x: x, y: y, title: tip)
            }
        }
        drawAxisLabels(&svg, layout, xLabel: xLabel, yLabel: yLabel)
        drawLegend(&svg, layout, names: names) { svg, index, x, cy in
            drawPolyline(&svg, [(x, cy), (x + legendSwatch, cy)], index: index)
            if kept[index].count <= markerLimit {
                drawMarker(&svg, index: index, x: x + legendSwatch / 2, y: cy, title: nil)
            }
        }
        return svg.document(width: width, height: height, title: title)
    }

    /// Vertical gridlines and labels for each x tick.
    private static func drawXTicks(_ svg: inout SVGWriter, _ layout: Layout, _ axis: ChartAxis) {
        let widest = axis.labels.map { SVGWriter.textWidth($0, fontSize: tickSize) }.max() ?? 0
        let slot = layout.plotWidth / Double(max(1, axis.ticks.count - 1))
        let stride = labelStride(labelWidth: widest + 8, slotWidth: slot)
        for (i, (value, label)) in zip(axis.ticks, axis.labels).enumerated() {
            let x = layout.x(axis.fraction(value))
            svg.line(x, layout.plotTop, x, layout.plotBottom, stroke: gridColour)
            guard i % stride == 0 else { continue }
            svg.line(x, layout.plotBottom, x, layout.plotBottom + 5, stroke: axisColour)
            svg.text(label, x: x, y: layout.plotBottom + 8 + tickSize, size: tickSize,
                     anchor: .middle, fill: labelColour)
        }
    }

    /// Series 0–7 solid; the palette repeats after 8, so later series are dashed.
    private static func drawPolyline(_ svg: inout SVGWriter, _ points: [(Double, Double)], index: Int) {
        guard points.count >= 2 else { return }
        let coordinates = points.map { SVGWriter.number($0.0) + "," + SVGWriter.number($0.1) }
        var attrs = [("points", coordinates.joined(separator: " ")), ("fill", "none"),
                     ("stroke", colour(index)), ("stroke-width", "2"),
                     ("stroke-linejoin", "round"), ("stroke-linecap", "round")]
        if index >= palette.count { attrs.append(("stroke-dasharray", "7 4")) }
        svg.element("polyline", attrs)
    }

    /// Marker shapes cycle circle, square, triangle, diamond, inverted triangle.
    private static func drawMarker(_ svg: inout SVGWriter, index: Int, x: Double, y: Double, title: String?) {
        let r = 4.0
        let style = [("fill", colour(index)), ("stroke", "#ffffff"), ("stroke-width", "1")]
        func polygon(_ offsets: [(Double, Double)]) {
            let pts = offsets.map { SVGWriter.number(x + $0.0) + "," + SVGWriter.number(y + $0.1) }
            svg.element("polygon", [("points", pts.joined(separator: " "))] + style, title: title)
        }
        switch index % 5 {
        case 0:
            svg.element("circle", [("cx", SVGWriter.number(x)), ("cy", SVGWriter.number(y)),
                                   ("r", SVGWriter.number(r))] + style, title: title)
        case 1: polygon([(-r, -r), (r, -r), (r, r), (-r, r)].map { ($0.0 * 0.9, $0.1 * 0.9) })
        case 2: polygon([(0, -r * 1.2), (r * 1.1, r * 0.8), (-r * 1.1, r * 0.8)])
        case 3: polygon([(0, -r * 1.3), (r * 1.1, 0), (0, r * 1.3), (-r * 1.1, 0)])
        default: polygon([(0, r * 1.2), (r * 1.1, -r * 0.8), (-r * 1.1, -r * 0.8)])
        }
    }
}
