/// A problem with a data file or folder. The description always names the path and what is wrong,
/// e.g. `data/mnist-5k/train-images-idx3-ubyte.gz: truncated: expected 3528000 bytes of pixels, found 3527999`.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case missingFile, unreadable, wrongMagic, badHeader, truncated, extraBytes, corruptGzip,
             tooLarge, countMismatch
    }

    public let kind: Kind
    /// The file or folder (for a count mismatch, both files).
    public let path: String
    /// What is wrong, in words.
    public let problem: String

    public init(_ kind: Kind, path: String, _ problem: String) {
        self.kind = kind
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}
