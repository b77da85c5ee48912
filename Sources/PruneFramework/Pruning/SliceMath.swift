/// Reductions over the elements of a tensor slice, for criteria.
public enum SliceMath {
    /// Σ f(w, column) over every element of the slice; `column` is the element's input index.
    public static func sum(_ s: TensorSlice, in model: Transformer, _ f: (Float, Int) -> Double) -> Double {
        guard let e = model.params.entry(s.tensor) else { return 0 }
        let p = model.params.pointer(s.tensor)
        let width = e.shape.count == 2 ? e.shape[1] : 1
        var acc = 0.0
        if s.axis == 0 {
            for r in s.range {
                let row = p + r * width
                for j in 0..<width { acc += f(row[j], e.shape.count == 2 ? j : r) }
            }
        } else {
            for r in 0..<e.shape[0] {
                for j in s.range { acc += f(p[r * width + j], j) }
            }
        }
        return acc
    }

    /// Combines per-slice scores of a unit.
    public static func reduce(_ values: [Double], _ how: String) -> Double {
        switch how {
        case "mean": return values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
        case "max": return values.max() ?? 0
        case "prod": return values.reduce(1, *)
        default: return values.reduce(0, +)
        }
    }
}
