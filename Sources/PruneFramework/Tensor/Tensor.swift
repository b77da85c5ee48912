/// A dense row-major f32 tensor: a shape and its elements.
///
/// `shape` lists dimensions outermost first (a weight that maps 576 inputs to 1536 outputs is
/// `[1536, 576]`), the opposite of GGUF's innermost-first order.
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "Tensor: shape \(shape) does not hold \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }
    public var rows: Int { shape.count >= 2 ? shape[0] : 1 }
    public var cols: Int { shape.last ?? 1 }
}
