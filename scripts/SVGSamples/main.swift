// Writes the SVG chart gallery (SVGChart.Samples) to a folder, for looking at the renderer's output:
//
//     swift run svg-samples [DIR]        (default: out/svg-samples)
import Foundation
import PruneFramework

let dir = CommandLine.arguments.dropFirst().first ?? "out/svg-samples"
do {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, svg) in SVGChart.Samples.all() {
        try svg.write(toFile: (dir as NSString).appendingPathComponent(name + ".svg"), atomically: true, encoding: .utf8)
    }
    print("wrote \(SVGChart.Samples.all().count) charts to \(dir)")
} catch {
    FileHandle.standardError.write(Data("svg-samples: cannot write to '\(dir)': \(error.localizedDescription)\n".utf8))
    exit(1)
}
