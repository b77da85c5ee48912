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
    ],
    targets: [
        .target(name: "CKernels"),
        .target(name: "PruneFramework", dependencies: ["CKernels"]),
        .target(name: "Criteria", dependencies: ["PruneFramework"]),
        .target(name: "Strategies", dependencies: ["PruneFramework"]),
        .target(name: "Runner", dependencies: ["PruneFramework", "Criteria", "Strategies"]),
        .executableTarget(name: "prune", dependencies: ["Runner"]),
        .testTarget(name: "PruneFrameworkTests", dependencies: ["PruneFramework"]),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "PruneFramework"]),
    ],
    // Swift 5 mode: kernels share raw buffer pointers across DispatchQueue.concurrentPerform
    // iterations, which Swift 6's Sendable checking rejects.
    swiftLanguageModes: [.v5]
)
