import CShims

/// A failed system call: which one, and errno. The one error type of Loop.
public struct SysError: Error, Equatable {
    public let op: StaticString
    public let code: Int32

    public init(_ op: StaticString, _ code: Int32) {
        self.op = op
        self.code = code
    }

    /// errno of the last failed call.
    public static func last(_ op: StaticString) -> SysError { SysError(op, shim_errno()) }

    public static func == (a: SysError, b: SysError) -> Bool {
        a.code == b.code && a.op.utf8Start == b.op.utf8Start
    }

    /// "connect: Connection refused"
    public var message: String {
        var s = ""
        s += op.description
        s += ": "
        s += SysError.describe(code)
        return s
    }

    /// strerror's text for an errno value (the common ones; others as "errno N").
    public static func describe(_ code: Int32) -> String {
        guard let p = shim_strerror(code) else { return "errno " + String(code) }
        return String(cString: p)
    }
}
