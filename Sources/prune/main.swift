import Foundation
import Runner

Interruption.install()
exit(CLI.run(Array(CommandLine.arguments.dropFirst())))
