import Foundation
import PackagePlugin

/// `swift package prune <subcommand> ...`: runs this package's `prune` tool in the package directory.
///
/// Commands that write files need permission:
/// `swift package --allow-writing-to-package-directory prune run Examples/recipes/quickstart.json`.
@main
struct PrunePlugin: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        let tool = try context.tool(named: "prune")
        let process = Process()
        process.executableURL = tool.url
        process.arguments = arguments
        process.currentDirectoryURL = context.package.directoryURL
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            Diagnostics.error("prune \(arguments.joined(separator: " ")) exited with status \(process.terminationStatus)")
        }
    }
}
