extension SystemError {
    /// The error itself when it is a ``SystemError``, else one naming `operation` and
    /// `path`. Untyped `catch` blocks (closures that rethrow as `any Error`) need it
    /// to keep `throws(SystemError)` signatures.
    public static func narrowing(_ error: any Error, _ operation: String, path: String? = nil) -> SystemError {
        if let error = error as? SystemError { return error }
        return SystemError.failed("\(operation) failed: \(error)", path: path)
    }
}
