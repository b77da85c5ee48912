import Foundation
import Runner

exit(CLI.run(Array(CommandLine.arguments.dropFirst())))
