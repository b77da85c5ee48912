/// Which units of which groups to remove.
public struct PruningPlan: Sendable {
    /// Removed unit indices per group, keyed by `PruneGroup.id`.
    public var removals: [String: [Int]]

    public init(removals: [String: [Int]] = [:]) { self.removals = removals }

    /// Total parameters the plan removes from these groups.
    public func removedParameters(in groups: [PruneGroup]) -> Int {
        groups.reduce(0) { acc, g in acc + (removals[g.id] ?? []).reduce(0) { $0 + g.units[$1].parameterCount } }
    }
}
