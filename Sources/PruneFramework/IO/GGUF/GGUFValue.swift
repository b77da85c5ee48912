/// One GGUF metadata value (arrays may nest).
///
/// The accessors convert loosely (`int` accepts any integer case, `double` any numeric case) so
/// readers need not care which width a converter chose; they return nil on a kind mismatch.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// GGUF value type ids (`gguf_type` in gguf.h).
    enum Tag: UInt32, CaseIterable {
        case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
        case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

        /// The fewest bytes one value of this type takes in a file (for capping array counts).
        var minBytes: Int {
            switch self {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64, .string: 8
            case .array: 12
            }
        }
    }

    /// The value's GGUF type id.
    var tag: Tag {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    /// Any integer case as Int (nil when it does not fit).
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// Any numeric case as Double.
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        case .uint64(let v): Double(v)
        default: int.map(Double.init)
        }
    }

    /// The string of a `.string`.
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    /// The elements of an `.array`.
    public var array: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }
    /// The value of a `.bool`.
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }

    /// The GGUF type name ("uint32", "string", "array[string]", ...), for messages.
    public var typeName: String {
        switch self {
        case .array(let a): "array[\(a.first?.typeName ?? "")]"
        default: "\(tag)"
        }
    }

    /// An array whose elements are all strings.
    public var stringArray: [String]? {
        guard let a = array else { return nil }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let s = v.string else { return nil }
            out.append(s)
        }
        return out
    }

    /// An array whose elements are all integers that fit in Int.
    public var intArray: [Int]? {
        guard let a = array else { return nil }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let i = v.int else { return nil }
            out.append(i)
        }
        return out
    }

    /// An array whose elements are all numbers, as Float.
    public var floatArray: [Float]? {
        guard let a = array else { return nil }
        var out: [Float] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let d = v.double else { return nil }
            out.append(Float(d))
        }
        return out
    }
}
