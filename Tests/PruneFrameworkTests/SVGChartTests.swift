import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import PruneFramework

/// SVG charts: well-formed XML, escaping, tick choice, skipped non-finite values, determinism.
@Suite struct SVGChartTests {
    /// Collects element names and text while parsing; `error` is set when the XML is malformed.
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [String] = []
        var rootAttributes: [String: String] = [:]
        var text = ""
        var error: Error?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            if elements.isEmpty { rootAttributes = attributes }
            elements.append(name)
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = parseError }
    }

    func parse(_ svg: String) -> Collector {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        let ok = parser.parse()
        #expect(ok, "not well-formed: \(String(describing: collector.error ?? parser.parserError))")
        #expect(collector.error == nil)
        return collector
    }

    func count(_ tag: String, in svg: String) -> Int {
        svg.components(separatedBy: "<\(tag) ").count - 1
    }

    func barChart() -> String { SVGChart.Samples.bars() }

    func lineChart(logY: Bool = false) -> String { SVGChart.Samples.lines(logY: logY) }

    // MARK: Structure

    @Test func barChartIsStandaloneSVG() {
        let svg = barChart()
        let doc = parse(svg)
        #expect(doc.elements.first == "svg")
        #expect(doc.rootAttributes["xmlns"] == "http://www.w3.org/2000/svg")
        #expect(doc.rootAttributes["viewBox"] == "0 0 900 360")
        #expect(doc.rootAttributes["version"] == "1.1")
        #expect(doc.text.contains("Kept per layer"))
        #expect(doc.text.contains("fraction kept") && doc.text.contains("layer"))
        #expect(doc.text.contains("heads kept") && doc.text.contains("MLP channels kept"))
        #expect(count("rect", in: svg) >= 60)
        #expect(svg.contains("#0072B2") && svg.contains("#E69F00"))
    }

    @Test(arguments: [false, true]) func lineChartIsStandaloneSVG(logY: Bool) {
        let svg = lineChart(logY: logY)
        let doc = parse(svg)
        #expect(doc.rootAttributes["viewBox"] == "0 0 720 400")
        #expect(count("polyline", in: svg) == 2 + 2)  // two series and their legend swatches
        #expect(doc.text.contains("perplexity") && doc.text.contains("sparsity"))
        if logY {
            #expect(doc.text.contains(">1000<") == false)  // labels are in text nodes, not markup
            #expect(svg.contains(">1000</text>") && svg.contains(">10</text>"))
        }
    }

    @Test func thirtyLayersAreAllLabelledAtDefaultWidth() {
        let svg = barChart()
        for layer in ["0", "9", "29"] { #expect(svg.contains(">\(layer)</text>")) }
    }

    @Test func crowdedCategoriesAreThinned() {
        let names = (0..<120).map { "layer \($0)" }
        let svg = SVGChart.groupedBars(title: "t", categories: names,
                                       series: [("a", names.map { _ in 1 })], yLabel: "y", xLabel: "x")
        _ = parse(svg)
        #expect(svg.contains(">layer 0</text>"))
        #expect(!svg.contains(">layer 1</text>"))
        let labelled = names.filter { svg.contains(">\($0)</text>") }.count
        #expect(labelled >= 6 && labelled <= 30)
        #expect(SVGChart.labelStride(labelWidth: 30, slotWidth: 40) == 1)
        #expect(SVGChart.labelStride(labelWidth: 30, slotWidth: 10) == 5)
        #expect(SVGChart.labelStride(labelWidth: 30, slotWidth: 2) == 20)
    }

    // MARK: Escaping

    @Test func textIsEscaped() {
        let nasty = "a<b & \"c\" > 'd'\u{1}"
        #expect(SVGWriter.escape(nasty) == "a&lt;b &amp; &quot;c&quot; &gt; &apos;d&apos; ")
        let bars = SVGChart.groupedBars(title: nasty, categories: [nasty], series: [(nasty, [1])],
                                        yLabel: nasty, xLabel: nasty)
        let lines = SVGChart.lines(title: nasty, series: [ChartSeries(name: nasty, points: [(0, 1), (1, 2)])],
                                   xLabel: nasty, yLabel: nasty)
        for svg in [bars, lines, SVGChart.lines(title: nasty, series: [], xLabel: "", yLabel: "")] {
            let doc = parse(svg)
            #expect(doc.text.contains("a<b & \"c\" > 'd'"))
            #expect(!svg.contains("a<b"))
        }
    }

    // MARK: Ticks

    @Test(arguments: [
        (0.0, 1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (0.3, 7.3, [0, 1, 2, 3, 4, 5, 6, 7, 8], ["0", "1", "2", "3", "4", "5", "6", "7", "8"]),
        (3.0, 97.0, [0, 20, 40, 60, 80, 100], ["0", "20", "40", "60", "80", "100"]),
        (-0.013, 0.031, [-0.02, -0.01, 0, 0.01, 0.02, 0.03, 0.04], ["-0.02", "-0.01", "0.00", "0.01", "0.02", "0.03", "0.04"]),
        (0.0, 2.4e7, [0, 5e6, 1e7, 1.5e7, 2e7, 2.5e7], ["0", "5e6", "1e7", "1.5e7", "2e7", "2.5e7"]),
        (5.0, 5.0, [2, 3, 4, 5, 6, 7, 8], ["2", "3", "4", "5", "6", "7", "8"]),
    ]) func linearTicks(lo: Double, hi: Double, ticks: [Double], labels: [String]) {
        let axis = ChartAxis.linear(lo, hi)
        #expect(axis.ticks == ticks)
        #expect(axis.labels == labels)
        #expect(axis.lo <= lo && axis.hi >= hi)
    }

    @Test func fixedDomainKeepsEnds() {
        let axis = ChartAxis.linearFixed(0, 4096)
        #expect(axis.lo == 0 && axis.hi == 4096)
        #expect(axis.ticks == [0, 1000, 2000, 3000, 4000])
        #expect(SVGChart.barAxis(minValue: 0.2, maxValue: 0.9, yMax: 1).ticks == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(SVGChart.barAxis(minValue: 3, maxValue: 7.3, yMax: .nan).hi == 8)
    }

    @Test(arguments: [
        (5.6, 900.0, [10, 100, 1000], ["10", "100", "1000"]),
        (2.1, 900.0, [2, 10, 100, 1000], ["2", "10", "100", "1000"]),
        (0.0031, 0.9, [0.002, 0.01, 0.1, 1], ["0.002", "0.01", "0.1", "1"]),
        (5.6, 40.0, [5, 10, 20, 50], ["5", "10", "20", "50"]),
        (5.6, 9.0, [5, 6, 7, 8, 9, 10], ["5", "6", "7", "8", "9", "10"]),
        (0.003, 0.04, [0.002, 0.005, 0.01, 0.02, 0.05], ["0.002", "0.005", "0.01", "0.02", "0.05"]),
        (1.0, 1e12, [1, 1e2, 1e4, 1e6, 1e8, 1e10, 1e12], ["1", "100", "10000", "1e6", "1e8", "1e10", "1e12"]),
    ]) func logTicks(lo: Double, hi: Double, ticks: [Double], labels: [String]) {
        let axis = ChartAxis.log(lo, hi)
        #expect(axis.isLog)
        #expect(zip(axis.ticks, ticks).allSatisfy { abs($0 - $1) <= 1e-12 * $1 } && axis.ticks.count == ticks.count)
        #expect(axis.labels == labels)
        #expect(axis.lo <= lo && axis.hi >= hi)
        #expect(axis.minorTicks.allSatisfy { $0 >= axis.lo && $0 <= axis.hi && !axis.ticks.contains($0) })
    }

    @Test func numbersAreFixedPrecision() {
        #expect(SVGWriter.number(12.5) == "12.5")
        #expect(SVGWriter.number(300) == "300")
        #expect(SVGWriter.number(-0.001) == "0")
        #expect(SVGWriter.number(1.005) == "1.01" || SVGWriter.number(1.005) == "1")
        #expect(SVGWriter.number(.nan) == "0")
        #expect(SVGWriter.fixed(0.1 + 0.2, decimals: 3) == "0.300")
        #expect(ChartAxis.scientificLabel(2.5e-7) == "2.5e-7")
        #expect(ChartAxis.scientificLabel(-9.999e6) == "-1e7")
    }

    // MARK: Non-finite and empty input

    @Test func nonFiniteValuesAreSkipped() {
        let clean = SVGChart.lines(title: "t", series: [ChartSeries(name: "s", points: [(0, 1), (2, 3)])],
                                   xLabel: "x", yLabel: "y")
        let dirty = SVGChart.lines(title: "t", series: [ChartSeries(name: "s", points: [
            (0, 1), (1, .nan), (.infinity, 2), (1.5, -.infinity), (2, 3),
        ])], xLabel: "x", yLabel: "y")
        #expect(dirty == clean)
        #expect(!dirty.lowercased().contains("nan") && !dirty.contains("inf"))

        let bars = SVGChart.groupedBars(title: "t", categories: ["a", "b", "c"],
                                        series: [("s", [1, .nan, .infinity])], yLabel: "y", xLabel: "x")
        _ = parse(bars)
        #expect(count("rect", in: bars) == 1 + 1 + 1)  // background, one bar, legend swatch
    }

    @Test func logScaleSkipsNonPositive() {
        let svg = SVGChart.lines(title: "t", series: [ChartSeries(name: "s", points: [(0, 0), (1, -3), (2, 10), (3, 100)])],
                                 xLabel: "x", yLabel: "y", logY: true)
        _ = parse(svg)
        #expect(count("circle", in: svg) == 2 + 1)  // two kept points and the legend marker
    }

    @Test func emptyInputSaysNoData() {
        let cases = [
            SVGChart.groupedBars(title: "empty", categories: [], series: [], yLabel: "y", xLabel: "x"),
            SVGChart.groupedBars(title: "empty", categories: ["a"], series: [], yLabel: "y", xLabel: "x"),
            SVGChart.groupedBars(title: "empty", categories: ["a"], series: [("s", [.nan])], yLabel: "y", xLabel: "x"),
            SVGChart.lines(title: "empty", series: [], xLabel: "x", yLabel: "y"),
            SVGChart.lines(title: "empty", series: [ChartSeries(name: "s", points: [])], xLabel: "x", yLabel: "y"),
            SVGChart.lines(title: "empty", series: [ChartSeries(name: "s", points: [(1, -1)])],
                           xLabel: "x", yLabel: "y", logY: true),
            SVGChart.lines(title: "tiny", series: [], xLabel: "x", yLabel: "y", width: 0, height: -5),
        ]
        for svg in cases {
            let doc = parse(svg)
            #expect(doc.text.contains("no data"))
        }
    }

    @Test func singlePointAndFlatSeriesDraw() {
        let svg = SVGChart.lines(title: "t", series: [ChartSeries(name: "s", points: [(3, 7)])],
                                 xLabel: "x", yLabel: "y")
        _ = parse(svg)
        #expect(count("circle", in: svg) == 2)
        let zeros = SVGChart.groupedBars(title: "t", categories: ["a", "b"], series: [("s", [0, 0])],
                                         yLabel: "y", xLabel: "x")
        #expect(SVGChart.barAxis(minValue: 0, maxValue: 0, yMax: nil).ticks.first == 0)
        _ = parse(zeros)
    }

    // MARK: Determinism

    @Test func sameInputGivesSameBytes() {
        #expect(barChart() == barChart())
        #expect(lineChart(logY: true) == lineChart(logY: true))
        #expect(lineChart() == lineChart())
    }

    /// Every chart of the gallery that `swift run svg-samples` writes is well-formed and has its title.
    @Test func galleryChartsAreWellFormed() {
        let all = SVGChart.Samples.all()
        #expect(all.count == 7 && Set(all.map(\.name)).count == 7)
        for (name, svg) in all {
            let doc = parse(svg)
            #expect(doc.elements.first == "svg", "\(name)")
            #expect(!doc.text.isEmpty, "\(name)")
        }
        #expect(parse(SVGChart.Samples.manyLines()).text.contains("Ten criteria <& friends>"))
    }
}
