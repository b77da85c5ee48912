/// Kinds of coupled structures a grouping can produce.
public enum StructureKind: String, Codable, Sendable, CaseIterable {
    /// A KV head with the query heads that share it and the matching attn_output columns.
    case kvGroup = "kv-groups"
    /// One MLP channel: a row of ffn_gate and ffn_up, a column of ffn_down.
    case mlpChannel = "mlp-channels"
    /// One residual-stream channel across the whole model.
    case hiddenChannel = "hidden-channels"
    /// A whole decoder layer.
    case block = "blocks"
}

/// A contiguous range of rows (axis 0) or columns (axis 1) of one tensor; 1-D tensors use axis 0.
public struct TensorSlice: Codable, Sendable, Hashable {
    public var tensor: String
    public var axis: Int
    public var start: Int
    public var count: Int

    public init(_ tensor: String, axis: Int, _ range: Range<Int>) {
        self.tensor = tensor
        self.axis = axis
        self.start = range.lowerBound
        self.count = range.count
    }

    public var range: Range<Int> { start..<(start + count) }
}

/// One removable unit: the slices that go together.
public struct PruneUnit: Sendable, Equatable {
    public var slices: [TensorSlice]
    /// Parameters removed with this unit (elements of all its slices, counting overlaps once).
    public var parameterCount: Int

    public init(slices: [TensorSlice], parameterCount: Int) {
        self.slices = slices
        self.parameterCount = parameterCount
    }
}

/// What removing units of a group does to the model's widths (`ModelConfig`): the grouping says it,
/// so surgery needs no knowledge of tensor names.
public enum WidthChange: Sendable, Equatable {
    /// Each unit is one KV head of `layer` with the `queryHeads` query heads that share it.
    case kvHeads(layer: Int, queryHeads: Int)
    /// Each unit is one MLP channel of `layer`.
    case mlpChannels(layer: Int)
    /// Each unit is one residual-stream channel.
    case hiddenChannels
    /// Unit i is the whole decoder layer `layers[i]`.
    case layers([Int])
}

/// The units of one structure kind in one layer (or model-wide for hidden channels), scored together.
public struct PruneGroup: Sendable, Equatable {
    public var kind: StructureKind
    /// The decoder layer; nil for model-wide groups (hidden channels).
    public var layer: Int?
    public var units: [PruneUnit]
    /// The width its removed units shrink; nil for a group that is only scored, never cut.
    public var width: WidthChange?

    public init(kind: StructureKind, layer: Int?, units: [PruneUnit], width: WidthChange? = nil) {
        self.kind = kind
        self.layer = layer
        self.units = units
        self.width = width
    }

    /// A stable identifier, e.g. "mlp-channels@12".
    public var id: String { layer.map { "\(kind.rawValue)@\($0)" } ?? kind.rawValue }
}
