import Foundation

extension SVGChart {
    /// A gallery of charts that exercise the renderer's cases (many categories, log scales, long
    /// titles, markup in names, no data). The tests check them; `swift run svg-samples DIR` writes them
    /// as SVG files for looking at.
    public enum Samples {
        static let layers = (0..<30).map { String($0) }
        static let heads = (0..<30).map { 1 - Double($0 % 7) / 10 }
        static let mlp = (0..<30).map { 0.5 + Double($0 % 5) / 10 }

        /// Every sample, by file name (without `.svg`).
        public static func all() -> [(name: String, svg: String)] {
            [("bars", bars()), ("lines", lines()), ("lines-log", lines(logY: true)), ("loss", loss()),
             ("empty", SVGChart.lines(title: "Nothing here", series: [], xLabel: "x", yLabel: "y")),
             ("bars-crowded", crowdedBars()), ("lines-many", manyLines())]
        }

        /// Kept fraction of heads and MLP channels over 30 layers.
        public static func bars() -> String {
            SVGChart.groupedBars(title: "Kept per layer", categories: layers,
                                 series: [("heads kept", heads), ("MLP channels kept", mlp)],
                                 yLabel: "fraction kept", xLabel: "layer", yMax: 1)
        }

        /// Two perplexity-against-sparsity curves.
        public static func lines(logY: Bool = false) -> String {
            let a = ChartSeries(name: "wanda", points: [(0, 5.6), (0.25, 6.1), (0.5, 7.9), (0.75, 40)])
            let b = ChartSeries(name: "magnitude", points: [(0, 5.6), (0.25, 6.8), (0.5, 14), (0.75, 900)])
            return SVGChart.lines(title: "PPL vs sparsity", series: [a, b], xLabel: "sparsity",
                                  yLabel: "perplexity", logY: logY)
        }

        /// A 400-step loss curve with a second, offset curve.
        public static func loss() -> String {
            let train = (0...400).map { (i: Int) -> (x: Double, y: Double) in
                let t = Double(i)
                return (t, 2.2 + 4 * exp(-t / 60) + 0.05 * sin(t))
            }
            let eval = train.map { (x: $0.x, y: $0.y * 1.08) }
            return SVGChart.lines(title: "Fine-tuning loss after 50% pruning",
                                  series: [ChartSeries(name: "train", points: train), ChartSeries(name: "eval", points: eval)],
                                  xLabel: "step", yLabel: "cross-entropy (nats)")
        }

        /// Three series over 80 categories under a title too long for the width.
        public static func crowdedBars() -> String {
            let names = ["attention heads kept", "MLP channels kept", "embedding dims kept"]
            let series = names.enumerated().map { j, name in
                (name: name, values: (0..<80).map { (i: Int) -> Double in 40 + 30 * sin(Double(i + 10 * j) / 9) })
            }
            return SVGChart.groupedBars(
                title: "Structured pruning of an 80-layer model with a rather long title that must be cut somewhere",
                categories: (0..<80).map { "L\($0)" }, series: series, yLabel: "kept (count)", xLabel: "layer")
        }

        /// Ten series on a log scale, with markup characters in the title.
        public static func manyLines() -> String {
            let series = (0..<10).map { j in
                ChartSeries(name: "criterion-\(j)", points: (0...8).map { (i: Int) -> (x: Double, y: Double) in
                    (Double(i) / 10, 6 * exp(Double(i * (j + 1)) / 12))
                })
            }
            return SVGChart.lines(title: "Ten criteria <& friends>", series: series, xLabel: "sparsity",
                                  yLabel: "perplexity", logY: true, width: 900, height: 500)
        }
    }
}
