import Foundation
import SeedServer

exit(await SeedMirrorCLI.main(Array(CommandLine.arguments.dropFirst())))
