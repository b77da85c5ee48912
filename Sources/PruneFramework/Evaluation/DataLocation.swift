import Foundation

/// Where the evaluation and calibration sets (the repository's `Data/` folder) are found.
///
/// Looked up in this order, first match wins:
/// 1. a folder given on the command line (`--data-dir`), and nothing else when one is given;
/// 2. else `$PRUNE_DATA_DIR`, and nothing else when it is set;
/// 3. else `Data/` of the package the running executable was built in (found by walking up from
///    the executable, e.g. `.build/release/prune`, to the folder holding `Data/SHA256SUMS`);
/// 4. else `Data/` of the source checkout this file was compiled from (for a binary copied elsewhere).
///
/// A file found in none of them is an error that names every place looked.
public struct DataLocation: Sendable {
    /// One folder searched, and why it is searched.
    public struct Place: Sendable, Equatable {
        public var path: String
        public var origin: String
    }

    /// The folders searched, in order.
    public let places: [Place]

    /// The environment variable that overrides the data folder.
    public static let environmentVariable = "PRUNE_DATA_DIR"

    public init(override: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let override, !override.isEmpty {
            places = [Place(path: override, origin: "--data-dir")]
        } else if let env = environment[Self.environmentVariable], !env.isEmpty {
            places = [Place(path: env, origin: "$\(Self.environmentVariable)")]
        } else {
            var found: [Place] = []
            if let root = Self.packageRoot(above: Self.executableFolder()) {
                found.append(Place(path: root + "/Data", origin: "beside the executable"))
            }
            let source = Self.sourceCheckoutRoot() + "/Data"
            if !found.contains(where: { $0.path == source }) {
                found.append(Place(path: source, origin: "the source checkout"))
            }
            places = found
        }
    }

    /// The path of `relative` (e.g. `wikitext2/wikitext2_test_hfjoin.txt`) in the first place that
    /// holds it; `what` names the set in the error when none does.
    public func file(_ relative: String, what: String) throws -> String {
        for p in places {
            let path = (p.path as NSString).appendingPathComponent(relative)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue { return path }
        }
        throw PruneError(.fileNotFound, "\(what): '\(relative)' was not found; looked in \(lookedIn); "
                         + "pass --data-dir DIR or set \(Self.environmentVariable)=DIR to a folder laid out like the repository's Data/")
    }

    /// The places as one phrase: `'A' (beside the executable), 'B' (the source checkout)`.
    public var lookedIn: String {
        places.map { "'\($0.path)' (\($0.origin))" }.joined(separator: ", ")
    }

    /// The folder of the running executable, symlinks resolved.
    static func executableFolder() -> String? {
        guard let url = Bundle.main.executableURL else { return nil }
        return url.resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    /// The nearest folder at or above `start` that holds `Data/SHA256SUMS`.
    static func packageRoot(above start: String?) -> String? {
        guard var url = start.map({ URL(fileURLWithPath: $0) }) else { return nil }
        for _ in 0..<12 {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Data/SHA256SUMS").path) { return url.path }
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path { break }
            url = parent
        }
        return nil
    }

    /// The package root of the checkout this file was compiled in (four folders above it).
    static func sourceCheckoutRoot(file: String = #filePath) -> String {
        var url = URL(fileURLWithPath: file)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }
}
