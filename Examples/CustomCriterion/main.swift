import Foundation
import PruneFramework
import Runner

// `swift run custom-criterion run Examples/recipes/custom-criterion.json`: the prune command line
// with one more criterion registered.
let plugins = PluginSet.builtins()
registerExamplePlugins(plugins)
exit(CLI.run(Array(CommandLine.arguments.dropFirst()), plugins: plugins))
