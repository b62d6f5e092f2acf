import DirectCore

public enum TrustError: DirectError, Equatable {
    case malformed(String)

    public var kind: FailureKind { .malformedInput }

    public var description: String {
        switch self {
        case .malformed(let s): return "malformed: \(s)"
        }
    }
}
