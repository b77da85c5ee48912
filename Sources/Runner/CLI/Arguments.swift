import Foundation
import PruneFramework

/// Parsed command-line options of one subcommand: `--key value` options, `--flag`s and positionals.
///
/// Every option must be declared; an unknown one is an error that lists the allowed options. So is the
/// number of positionals: one more than a command takes is an error quoting the command's usage line.
public struct Arguments {
    public let command: String
    private var options: [String: String] = [:]
    private var flags: Set<String> = []
    public private(set) var positionals: [String] = []

    /// - valued: option names that take a value (without the leading dashes)
    /// - flags: option names that take none
    /// - positionals: how many arguments that are not options the command takes (`0...1`: an
    ///   optional recipe or model); its usage line is the one in `CLI.usage` starting "prune COMMAND"
    public init(_ args: [String], command: String, valued: Set<String>, flags allowedFlags: Set<String>,
                positionals allowed: ClosedRange<Int> = 0...0) throws {
        self.command = command
        var i = 0
        while i < args.count {
            let a = args[i]
            if a.hasPrefix("--") {
                var key = String(a.dropFirst(2)), inline: String?
                if let eq = key.firstIndex(of: "=") {
                    inline = String(key[key.index(after: eq)...])
                    key = String(key[..<eq])
                }
                if valued.contains(key) {
                    if let inline {
                        options[key] = inline
                    } else {
                        guard i + 1 < args.count else {
                            throw PruneError(.invalidArgument, "prune \(command): option '--\(key)' needs a value")
                        }
                        options[key] = args[i + 1]
                        i += 1
                    }
                } else if allowedFlags.contains(key), inline == nil {
                    flags.insert(key)
                } else {
                    let all = (valued.map { "--\($0) V" } + allowedFlags.map { "--\($0)" }).sorted()
                    throw PruneError(.invalidArgument, "prune \(command): unknown option '\(PruneError.shown(a))'; allowed: \(all.joined(separator: ", "))")
                }
            } else {
                positionals.append(a)
            }
            i += 1
        }
        try checkPositionals(allowed)
    }

    private func checkPositionals(_ allowed: ClosedRange<Int>) throws {
        if positionals.count > allowed.upperBound {
            let extra = PruneError.shown(positionals[allowed.upperBound])
            throw PruneError(.invalidArgument, "prune \(command): unexpected argument '\(extra)'; usage: \(Self.usage(command))")
        }
        if positionals.count < allowed.lowerBound {
            throw PruneError(.invalidArgument, "prune \(command): missing argument; usage: \(Self.usage(command))")
        }
    }

    /// The line of `CLI.usage` for `command` ("prune validate RECIPE.json"), or "prune COMMAND".
    static func usage(_ command: String) -> String {
        let lines = CLI.usage.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        return lines.first { $0 == "prune \(command)" || $0.hasPrefix("prune \(command) ") } ?? "prune \(command)"
    }

    public func flag(_ name: String) -> Bool { flags.contains(name) }

    public func string(_ name: String) -> String? { options[name] }

    public func required(_ name: String) throws -> String {
        guard let v = options[name] else {
            throw PruneError(.invalidArgument, "prune \(command): option '--\(name)' is required")
        }
        return v
    }

    public func int(_ name: String, default d: Int? = nil, range: ClosedRange<Int> = 0...Int.max) throws -> Int? {
        guard let s = options[name] else { return d }
        guard let v = Int(s), range.contains(v) else {
            throw PruneError(.invalidArgument, "prune \(command): '--\(name)' = '\(PruneError.shown(s))' must be an integer in \(range.lowerBound)...\(range.upperBound == Int.max ? "" : String(range.upperBound))")
        }
        return v
    }

    public func double(_ name: String, default d: Double, range: ClosedRange<Double>) throws -> Double {
        guard let s = options[name] else { return d }
        guard let v = Double(s), range.contains(v) else {
            throw PruneError(.invalidArgument, "prune \(command): '--\(name)' = '\(PruneError.shown(s))' must be a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }
}
