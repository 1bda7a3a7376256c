import Foundation
import SeedServer

exit(await CloudSimulatorCommand.main(Array(CommandLine.arguments.dropFirst())))
