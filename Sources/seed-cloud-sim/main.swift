import Foundation
import SeedServer

FileHandle.standardError.write(Data("seed-cloud-sim: not available in this build\n".utf8))
exit(2)
