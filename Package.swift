// swift-tools-version: 6.0
import PackageDescription

// No package dependencies and no unsafe flags: users depend on this package from their own
// packages (to add criteria), and SwiftPM refuses unsafe flags in dependencies.
let package = Package(
    name: "prune",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PruneFramework", targets: ["PruneFramework"]),
        .library(name: "Criteria", targets: ["Criteria"]),
        .library(name: "Strategies", targets: ["Strategies"]),
        .library(name: "Runner", targets: ["Runner"]),
        .executable(name: "prune", targets: ["prune"]),
        .plugin(name: "PrunePlugin", targets: ["PrunePlugin"]),
    ],
    targets: [
        .target(name: "CKernels"),
        // CMPI: MPI loaded with dlopen at run time, so building and running without MPI installed works.
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "PruneFramework", dependencies: ["CKernels", "CMPI"]),
        .target(name: "Criteria", dependencies: ["PruneFramework"]),
        .target(name: "Strategies", dependencies: ["PruneFramework"]),
        .target(name: "Runner", dependencies: ["PruneFramework", "Criteria", "Strategies"]),
        .executableTarget(name: "prune", dependencies: ["Runner"]),
        .plugin(name: "PrunePlugin",
                capability: .command(intent: .custom(verb: "prune", description: "Run the prune command line (run, validate, list, eval, ...)"),
                                     permissions: [.writeToPackageDirectory(reason: "prune run writes pruned models and reports")]),
                dependencies: ["prune"]),
        // Examples/CustomCriterion: a criterion added from outside the framework, used from a recipe.
        .executableTarget(name: "CustomCriterion", dependencies: ["PruneFramework", "Runner"], path: "Examples/CustomCriterion"),
        // Paths and file requirements shared by the test targets (a missing model skips a test, or fails it in CI).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // scripts/SVGSamples: writes the chart gallery (SVGChart.Samples) for looking at: `swift run svg-samples DIR`.
        .executableTarget(name: "svg-samples", dependencies: ["PruneFramework"], path: "scripts/SVGSamples"),
        .testTarget(name: "PruneFrameworkTests", dependencies: ["PruneFramework", "TestSupport"]),
        .testTarget(name: "CriteriaTests", dependencies: ["Criteria", "PruneFramework"]),
        .testTarget(name: "StrategiesTests", dependencies: ["Strategies", "PruneFramework", "TestSupport"]),
        .testTarget(name: "CustomCriterionTests", dependencies: ["CustomCriterion", "PruneFramework", "Runner"]),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "PruneFramework", "Criteria", "Strategies", "TestSupport"]),
    ],
    // Swift 5 mode: kernels share raw buffer pointers across DispatchQueue.concurrentPerform
    // iterations, which Swift 6's Sendable checking rejects.
    swiftLanguageModes: [.v5]
)
