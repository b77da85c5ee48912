import Foundation

/// Plugins of one stage, by name: how to decode each from a recipe, and its documentation.
public final class Registry<P>: @unchecked Sendable {
    public struct Entry {
        public let name: String
        public let summary: String
        public let keys: [PluginKey]
        /// Earlier names that still decode to this plugin.
        public let aliases: [String]
        let decode: (Decoder) throws -> P
    }

    /// The recipe key of this stage ("criterion", "scheduler", ...).
    public let stage: String
    public private(set) var entries: [Entry] = []

    public init(stage: String) { self.stage = stage }

    /// Registers a plugin type; `wrap` turns it into the stage's existential (usually `{ $0 }`).
    public func register<T: Plugin>(_ type: T.Type, _ wrap: @escaping (T) -> P) {
        entries.removeAll { $0.name == T.name }
        entries.append(Entry(name: T.name, summary: T.summary, keys: T.keys, aliases: T.aliases, decode: { wrap(try T(from: $0)) }))
    }

    public var names: [String] { entries.map(\.name) }

    /// Decodes `{"type": NAME, ...}` at the decoder's position.
    public func decode(from decoder: Decoder) throws -> P {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        let path = jsonPath(decoder.codingPath)
        guard c.contains(AnyCodingKey("type")) else {
            throw PruneError(.invalidArgument, "recipe: \(path) needs a 'type'; registered \(stage) plugins: \(names.joined(separator: ", "))")
        }
        let name: String
        do { name = try c.decode(String.self, forKey: AnyCodingKey("type")) } catch {
            throw PruneError(.invalidArgument, "recipe: \(path).type must be a string naming a \(stage) plugin")
        }
        guard let e = entries.first(where: { $0.name == name }) ?? entries.first(where: { $0.aliases.contains(name) }) else {
            throw PruneError(.unknownName, "recipe: \(path).type = '\(PruneError.shown(name))' is not a registered \(stage) plugin; registered: \(names.joined(separator: ", "))")
        }
        // An unknown key that another plugin of this stage takes is named as that plugin's.
        try decoder.checkKeys(e.keys.map(\.name), context: "'\(e.name)'") { key in
            entries.filter { $0.name != e.name && $0.keys.contains { $0.name == key } }.map(\.name)
        }
        return try e.decode(decoder)
    }
}

/// Every stage's registry: what a recipe can name.
public final class PluginSet: @unchecked Sendable {
    public let groupings = Registry<any Grouping>(stage: "grouping")
    public let criteria = Registry<any Criterion>(stage: "criterion")
    public let schedulers = Registry<any Scheduler>(stage: "scheduler")
    public let fineTuners = Registry<any FineTuner>(stage: "fineTuner")
    public let compensators = Registry<any Compensator>(stage: "compensator")

    public init() {}
}

extension CodingUserInfoKey {
    /// The PluginSet a recipe decoder resolves plugin names with.
    public static let pluginSet = CodingUserInfoKey(rawValue: "prune.pluginSet")!
}
