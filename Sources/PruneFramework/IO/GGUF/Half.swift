/// IEEE half and bfloat16 conversions written out by hand (Swift's Float16 is missing on Intel macOS).
enum Half {
    /// All 65,536 half values as f32, built once.
    static let table: [Float] = (0..<65536).map { toFloatSlow(UInt16($0)) }

    @inline(__always) static func toFloat(_ h: UInt16) -> Float {
        table.withUnsafeBufferPointer { $0[Int(h)] }
    }

    static func toFloatSlow(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let man = UInt32(h & 0x3FF)
        if exp == 0 {
            // Zero or subnormal: man · 2^-24.
            let v = Float(man) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (man << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (man << 13))
    }

    /// f32 → half with round-to-nearest-even, overflow to infinity, NaN kept.
    static func fromFloat(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        let sign = UInt16((b >> 16) & 0x8000)
        let exp = Int((b >> 23) & 0xFF)
        var man = b & 0x7F_FFFF
        if exp == 0xFF { return sign | 0x7C00 | (man != 0 ? 0x200 : 0) }
        let e = exp - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            man |= 0x80_0000
            let shift = UInt32(14 - e)
            var h = man >> shift
            let rem = man & ((1 << shift) - 1), half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && (h & 1) == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(e) << 10 | (man >> 13)
        let rem = man & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) { h += 1 }  // may carry into the exponent: correct
        return sign | UInt16(h)
    }

    @inline(__always) static func bf16ToFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// f32 → bfloat16 with round-to-nearest-even; NaN stays NaN.
    static func bf16FromFloat(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        if f.isNaN { return UInt16(b >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((b >> 16) & 1)
        return UInt16((b &+ rounding) >> 16)
    }
}
