import FuzzTargets
import Foundation

// hisp-fuzz: the parsers under libFuzzer (scripts/fuzz builds it with
// `-sanitize=fuzzer,address -DFUZZING`); HISP_FUZZ_TARGET names the parser.
// Built without FUZZING (as `swift build` does), it replays files:
// `hisp-fuzz TARGET FILE...`.

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

let target = ProcessInfo.processInfo.environment["HISP_FUZZ_TARGET"].flatMap(FuzzTarget.init(rawValue:))

// libFuzzer's main needs this symbol; the driver below is what runs.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, let target else { return 0 }
    target.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

guard target != nil else {
    FileHandle.standardError.write(Data("set HISP_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
    exit(2)
}
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(runDriver(&argc, &argv, testOneInput))
#else
let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
    FileHandle.standardError.write(Data("usage: hisp-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE...\n".utf8))
    exit(2)
}
for path in arguments.dropFirst() {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
        exit(2)
    }
    target.run(Array(data))
}
print("\(name): \(arguments.count - 1) input(s) replayed")
#endif
