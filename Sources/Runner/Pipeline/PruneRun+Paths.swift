import Foundation
import PruneFramework

extension PruneRun {
    /// Makes sure the output directory can be written before any work: creates it (with the
    /// folders above it) when missing, or creates and removes a small hidden probe file in it.
    ///
    /// Throws `PruneError` naming the directory and where it came from (`output.dir` in the recipe,
    /// or `--output-dir`) when a file stands at that path or above it, or when the system refuses.
    public func checkOutputDirectory() throws {
        try WritableDirectory.check(outputDir, key: outputDir == recipe.output.dir ? "recipe: output.dir" : "'--output-dir'")
    }
}

extension Comparison {
    /// Makes sure the sweep's output directory and its result cache can be written before any
    /// entry runs (see `PruneRun.checkOutputDirectory`).
    public func checkOutputDirectory() throws {
        try WritableDirectory.check(outputDir, key: outputDir == recipe.output.dir ? "recipe: output.dir" : "'--output-dir'")
        let cacheKey = sweep.cache != nil ? "recipe: sweep.cache" : "the sweep's cache (sweep.cache, by default <output.dir>/cache)"
        try WritableDirectory.check(cacheDir, key: cacheKey)
    }
}

/// Checks that a directory exists, or can be made, and takes new files.
enum WritableDirectory {
    /// Creates `path` with its missing parents, or probes it when it exists. `key` says where the path
    /// came from, for the message ("recipe: output.dir", "'--output-dir'").
    static func check(_ path: String, key: String) throws {
        let quoted = "\(key) = '\(PruneError.shown(path, limit: 200))'"
        guard !path.isEmpty else {
            throw PruneError(.invalidArgument, "\(quoted) is empty; give the directory the results go to")
        }
        guard !path.utf8.contains(0) else {
            throw PruneError(.invalidArgument, "\(quoted) contains a NUL character, which no path can hold; remove it")
        }
        if let blocker = fileInTheWay(path) {
            let which = blocker == path ? "it is a file" : "'\(PruneError.shown(blocker, limit: 200))' above it is a file"
            throw PruneError(.invalidArgument, "\(quoted) is not a usable directory: \(which), not a directory; choose another directory or move the file")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            try probe(path, quoted: quoted)
        } else {
            try create(path, quoted: quoted)
        }
    }

    /// The first existing non-directory among `path` and the folders above it, if any.
    static func fileInTheWay(_ path: String) -> String? {
        var p = path
        while !p.isEmpty {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory) {
                return isDirectory.boolValue ? nil : p
            }
            let up = (p as NSString).deletingLastPathComponent
            if up == p { return nil }
            p = up
        }
        return nil
    }

    /// Creates `path` and its missing parents.
    static func create(_ path: String, quoted: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw PruneError(.io, "\(quoted) cannot be created (\(reason(error))); check the permissions of the folders above it or choose another directory")
        }
    }

    /// Creates and removes a hidden file in the existing directory `path`.
    static func probe(_ path: String, quoted: String) throws {
        let file = (path as NSString).appendingPathComponent(".prune-write-probe-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            let why = String(cString: strerror(errno))
            throw PruneError(.io, "\(quoted) is not writable (\(why)); fix its permissions or choose another directory")
        }
        close(fd)
        unlink(file)
    }

    /// The system's reason inside a Foundation file error ("Permission denied").
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(u.code)))
        }
        return PruneError.shown(ns.localizedDescription, limit: 200)
    }
}
