import HISPCommands
#if canImport(Glibc)
import Glibc
#endif

exit(await HispMain.run(Array(CommandLine.arguments.dropFirst())))
