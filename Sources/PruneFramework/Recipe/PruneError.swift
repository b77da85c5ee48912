import Foundation

/// The one public error type: a stable code and a one-line message.
///
/// Messages follow one template: what failed, the offending value in quotes, where it was found
/// (file, JSON path, tensor name, byte offset), and the allowed values or the fix.
public struct PruneError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// Stable machine-readable error categories.
    public enum Code: String, Sendable, Codable {
        /// A file or directory does not exist or cannot be opened.
        case fileNotFound = "file-not-found"
        /// Bytes that do not follow the format (bad magic, bad type id, duplicate key, ...).
        case badFormat = "bad-format"
        /// A file ends before a field it declares.
        case truncated
        /// A number outside the range it may take (a count, a length, a ratio).
        case outOfRange = "out-of-range"
        /// A command-line argument or API argument that cannot be used.
        case invalidArgument = "invalid-argument"
        /// A feature this build does not support (an unknown quantisation type, ...).
        case unsupported
        /// Two shapes that must agree do not.
        case shapeMismatch = "shape-mismatch"
        /// Reading or writing a file failed.
        case io
        /// A name that is not registered (a plugin, a dataset, a tensor).
        case unknownName = "unknown-name"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}
