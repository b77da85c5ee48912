import Foundation
import Testing
@testable import PruneFramework

/// Each dequantiser against a block built byte by byte, with values worked out by hand, plus
/// digests of random blocks dequantised by an independent implementation (gguf-py).
@Suite struct DequantizeTests {
    func run(_ type: GGMLType, _ bytes: [UInt8]) throws -> [Float] {
        let n = bytes.count / type.typeSize * type.blockSize
        var out = [Float](repeating: .nan, count: n)
        try bytes.withUnsafeBytes { raw in
            try out.withUnsafeMutableBufferPointer { buf in
                let dst = try #require(buf.baseAddress)
                try dequantize(type, raw, count: n, into: dst)
            }
        }
        return out
    }

    func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }

    @Test func f32IsCopied() throws {
        let values: [Float] = [1, -0.0, .infinity, 3.5e-40, -123.25]
        #expect(try run(.f32, values.flatMap { le32($0.bitPattern) }).map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test func f16AndBF16KnownBitPatterns() throws {
        let halves: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555, 0x0000, 0x8000]
        let want: [Float] = [1, -2, 65504, 5.9604645e-8, 0.33325195, 0, -0]
        #expect(try run(.f16, halves.flatMap(le16)) == want)
        #expect(try run(.f16, le16(0x8000))[0].sign == .minus)
        #expect(try run(.f16, le16(0x7C00))[0] == .infinity)
        #expect(try run(.bf16, [0x3F80, 0xC040, 0x4049].flatMap(le16)) == [1, -3, 3.140625])
    }

    @Test func halfEncodingRoundTripsEveryHalf() {
        for h in 0..<65536 {
            let f = Half.toFloatSlow(UInt16(h))
            if f.isNaN { continue }
            #expect(Half.fromFloat(f) == UInt16(h))
        }
        #expect(Half.fromFloat(1.0009765625 + 0.00048828125) == 0x3C02)  // tie rounds to even
        #expect(Half.fromFloat(70000) == 0x7C00)
        #expect(Half.bf16FromFloat(1.00390625) == 0x3F80)  // tie to even
    }

    @Test func q8_0() throws {
        // d = 0.5; q = -16, -15, ..., 15.
        let qs = (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
        let y = try run(.q8_0, le16(0x3800) + qs)
        let want: [Float] = (0..<32).map { Float($0 - 16) * 0.5 }
        #expect(y == want)
    }

    @Test func q4_0() throws {
        // d = 2; byte j holds low nibble j and high nibble 15 − j.
        let qs = (0..<16).map { UInt8($0 | ((15 - $0) << 4)) }
        let y = try run(.q4_0, le16(0x4000) + qs)
        #expect(y[0] == -16 && y[15] == 14 && y[16] == 14 && y[31] == -16)
        let lows: [Float] = (0..<16).map { Float($0 - 8) * 2 }
        let highs: [Float] = (0..<16).map { Float(7 - $0) * 2 }
        #expect(y == lows + highs)
    }

    @Test func q4_1() throws {
        // d = 0.25, m = −1; low nibbles 0..15, high nibbles all 15.
        let qs = (0..<16).map { UInt8($0 | 0xF0) }
        let y = try run(.q4_1, le16(0x3400) + le16(0xBC00) + qs)
        #expect(y[0] == -1 && y[4] == 0 && y[15] == 2.75 && y[16] == 2.75)
        let lows: [Float] = (0..<16).map { Float($0) * 0.25 - 1 }
        #expect(y == lows + [Float](repeating: 2.75, count: 16))
    }

    @Test func q5_0AndQ5_1() throws {
        // qh = 0x0000FFFF: the fifth bit is set for elements 0–15 only. All nibbles are 1 (low) and 2 (high).
        let qh: [UInt8] = [0xFF, 0xFF, 0x00, 0x00]
        let qs = [UInt8](repeating: 0x21, count: 16)
        let y0 = try run(.q5_0, le16(0x3C00) + qh + qs)  // d = 1: x = q − 16
        #expect(y0 == [Float](repeating: 1, count: 16) + [Float](repeating: -14, count: 16))
        let y1 = try run(.q5_1, le16(0x3C00) + le16(0x3800) + qh + qs)  // d = 1, m = 0.5
        #expect(y1 == [Float](repeating: 17.5, count: 16) + [Float](repeating: 2.5, count: 16))
        // qh = 0x80000001: only elements 0 and 31 get the fifth bit.
        let y2 = try run(.q5_0, le16(0x3C00) + [0x01, 0x00, 0x00, 0x80] + [UInt8](repeating: 0, count: 16))
        #expect(y2[0] == 0 && y2[31] == 0 && y2[1] == -16 && y2[16] == -16 && y2[30] == -16)
    }

    /// 12 scale bytes giving sub-blocks (scale, min) = (1,5) (2,6) (3,7) (4,8) (1,2) (3,4) (5,6) (7,8).
    let kScales: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0x21, 0x43, 0x65, 0x87]
    let kPairs: [(Float, Float)] = [(1, 5), (2, 6), (3, 7), (4, 8), (1, 2), (3, 4), (5, 6), (7, 8)]

    @Test func q4_K() throws {
        // d = 1, dmin = 0.5; every byte 0x3A: even sub-blocks read 10 (low nibble), odd ones 3 (high).
        let y = try run(.q4_K, le16(0x3C00) + le16(0x3800) + kScales + [UInt8](repeating: 0x3A, count: 128))
        for (s, (sc, m)) in kPairs.enumerated() {
            let q: Float = s % 2 == 0 ? 10 : 3
            let want: Float = sc * q - 0.5 * m
            let got = Array(y[(32 * s)..<(32 * s + 32)])
            #expect(got == [Float](repeating: want, count: 32), "sub-block \(s)")
        }
        #expect(y[0] == 7.5 && y[32] == 3)
    }

    @Test func q4_KHighScaleBits() throws {
        // Bytes 0–7 carry 2 extra high bits for sub-blocks 4–7 in their top bits:
        // byte 0 = 0xC1: scale 0 = 1 and scale 4 gains 3 << 4; byte 4 = 0x85: min 0 = 5 and
        // min 4 gains 2 << 4. Byte 8 = 0x21 gives scale 4 = 1 + 48 = 49 and min 4 = 2 + 32 = 34.
        var sc = kScales
        sc[0] = 0xC1
        sc[4] = 0x85
        let y = try run(.q4_K, le16(0x3C00) + le16(0x3800) + sc + [UInt8](repeating: 0x3A, count: 128))
        #expect(y[0] == 1 * 10 - 0.5 * 5)
        #expect(y[128] == 49 * 10 - 0.5 * 34)
        #expect(y[160] == 3 * 3 - 0.5 * 4)  // sub-block 5 is unchanged
    }

    @Test func q5_K() throws {
        // As q4_K, plus high bits 0x55: bit 2j set (sub-block 2j gets +16), bit 2j+1 clear.
        let head: [UInt8] = le16(0x3C00) + le16(0x3800) + kScales
        let bits = [UInt8](repeating: 0x55, count: 32), nibbles = [UInt8](repeating: 0x3A, count: 128)
        let y = try run(.q5_K, head + bits + nibbles)
        for (s, (sc, m)) in kPairs.enumerated() {
            let q: Float = s % 2 == 0 ? 26 : 3
            let want: Float = sc * q - 0.5 * m
            let got = Array(y[(32 * s)..<(32 * s + 32)])
            #expect(got == [Float](repeating: want, count: 32), "sub-block \(s)")
        }
    }

    @Test func q6_K() throws {
        // ql bytes 0x21 (low 1, high 2); qh bytes 0xE4 (2-bit fields 0, 1, 2, 3), so the four
        // quarters of each 128 read q = 1−32, 17−32, 34−32, 50−32 = −31, −15, 2, 18.
        // scales 1, −2, 3, −4, ...; d = 0.5.
        let scales: [UInt8] = (0..<16).map { (i: Int) -> UInt8 in
            let v = i % 2 == 0 ? i + 1 : -(i + 1)
            return UInt8(bitPattern: Int8(v))
        }
        let low = [UInt8](repeating: 0x21, count: 128), high = [UInt8](repeating: 0xE4, count: 64)
        let block: [UInt8] = low + high + scales + le16(0x3800)
        let y = try run(.q6_K, block)
        let q: [Float] = [-31, -15, 2, 18]
        for i in 0..<256 {
            let half = i / 128, quarter = (i % 128) / 32, l = i % 32
            let s = Float(Int8(bitPattern: scales[8 * half + 2 * quarter + l / 16]))
            let want: Float = 0.5 * s * q[quarter]
            #expect(y[i] == want, "element \(i)")
        }
        #expect(y[0] == -15.5 && y[16] == 31)
    }

    @Test func q2_K() throws {
        // scales[s] = s | (15 − s) << 4: sub-block s has scale s and min 15 − s. d = 0.5, dmin = 0.25.
        // In each 32 bytes of qs, bytes 0–15 are 0xE4 (2-bit fields 0, 1, 2, 3) and bytes 16–31
        // 0x1B (3, 2, 1, 0). Element 128n + 32j + 16h + l is field j of byte 32n + 16h + l, in
        // sub-block 8n + 2j + h; so q = j when h = 0 and 3 − j when h = 1.
        let scales = (0..<16).map { UInt8($0 | ((15 - $0) << 4)) }
        let half = [UInt8](repeating: 0xE4, count: 16) + [UInt8](repeating: 0x1B, count: 16)
        let y = try run(.q2_K, scales + half + half + le16(0x3800) + le16(0x3400))
        for e in 0..<256 {
            let n = e / 128, j = (e % 128) / 32, h = (e % 32) / 16
            let s = 8 * n + 2 * j + h
            let q = h == 0 ? j : 3 - j
            #expect(y[e] == 0.5 * Float(s) * Float(q) - 0.25 * Float(15 - s), "element \(e)")
        }
        #expect(y[0] == -3.75 && y[16] == -2 && y[224] == 20.75 && y[255] == 0)
    }

    @Test func q3_K() throws {
        // Sub-block scales (6 bits, stored +32) v = 0, 1, 63, 32, 40, 17, 5, 48, 9, 33, 62, 2, 31, 50, 20, 44,
        // packed as: low nibbles of v0–v7 in bytes 0–7 low, of v8–v15 in bytes 0–7 high; the top
        // 2 bits of v_i in byte 8 + i % 4 at bit 2·(i / 4).
        let v = [0, 1, 63, 32, 40, 17, 5, 48, 9, 33, 62, 2, 31, 50, 20, 44]
        let packed: [UInt8] = [0x90, 0x11, 0xEF, 0x20, 0xF8, 0x21, 0x45, 0xC0, 0x48, 0xE4, 0x73, 0x8E]
        // hmask bytes 0–15 = 0xAA (odd bits), 16–31 = 0x55 (even bits); element 128n + 32j + 16h + l
        // reads bit 4n + j of hmask[16h + l]; a clear bit subtracts 4. qs as in the Q2_K test.
        let hmask = [UInt8](repeating: 0xAA, count: 16) + [UInt8](repeating: 0x55, count: 16)
        let half = [UInt8](repeating: 0xE4, count: 16) + [UInt8](repeating: 0x1B, count: 16)
        let y = try run(.q3_K, hmask + half + half + packed + le16(0x3400))  // d = 0.25
        for e in 0..<256 {
            let n = e / 128, j = (e % 128) / 32, h = (e % 32) / 16
            let bit = 4 * n + j
            let high = h == 0 ? bit % 2 == 1 : bit % 2 == 0
            let q = (h == 0 ? j : 3 - j) - (high ? 0 : 4)
            let want = 0.25 * Float(v[8 * n + 2 * j + h] - 32) * Float(q)
            #expect(y[e] == want, "element \(e)")
        }
        #expect(y[0] == 32 && y[16] == -23.25)  // 0.25·(0−32)·(0−4); 0.25·(1−32)·3
    }

    @Test func q8_K() throws {
        // d = 0.125 as f32, q = −128 ... 127, then 32 bytes of bsums the dequantiser ignores.
        let qs = (0..<256).map { UInt8(bitPattern: Int8($0 - 128)) }
        let y = try run(.q8_K, le32(Float(0.125).bitPattern) + qs + [UInt8](repeating: 0xFF, count: 32))
        #expect(y == (0..<256).map { 0.125 * Float($0 - 128) })
    }

    /// SplitMix64, so the test and the script that computed the digests see the same bytes.
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// FNV-1a over the little-endian bytes of each float.
    func fnv1a(_ v: [Float]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for x in v {
            for k in 0..<4 {
                h ^= UInt64((x.bitPattern >> (8 * UInt32(k))) & 0xFF)
                h = h &* 0x0100_0000_01B3
            }
        }
        return h
    }

    /// Random blocks (seed = type id) whose f16 scale fields are masked to stay finite, and the
    /// FNV-1a digest of their dequantisation by gguf-py 0.19.0 (`gguf.quants.dequantize`, a numpy
    /// port of ggml's reference; Q8_K, which gguf-py lacks, as d·q in numpy float32). The bytes are
    /// SplitMix64 outputs >> 56, seeded with the type id, masked as in the test. Any change in
    /// rounding, operation order or the sign of a zero changes the digest.
    static let references: [(GGMLType, blocks: Int, digest: UInt64, halfOffsets: [Int]?)] = [
        (.f16, 512, 0x5890_d684_56b0_6910, nil), (.bf16, 512, 0x9910_96cc_ef76_776c, nil),
        (.q4_0, 16, 0x2673_4ba3_39b3_f69d, [0]), (.q4_1, 16, 0x5337_d451_4a3d_ee85, [0, 2]),
        (.q5_0, 16, 0xde0b_6176_eb44_7b7d, [0]), (.q5_1, 16, 0x4c19_e781_c811_2299, [0, 2]),
        (.q8_0, 16, 0xda9f_a924_f7fc_9f0a, [0]), (.q2_K, 4, 0x7da2_6460_aca5_c30a, [80, 82]),
        (.q3_K, 4, 0x2dc9_863c_84f9_bf82, [108]), (.q4_K, 4, 0xf370_f4f1_3aa9_5d2b, [0, 2]),
        (.q5_K, 4, 0xb6c8_5823_ec58_0374, [0, 2]), (.q6_K, 4, 0x376c_9be0_ece4_c2a5, [208]),
        (.q8_K, 4, 0x9b38_fa3c_68ee_8441, []),
    ]

    @Test(arguments: 0..<references.count)
    func randomBlocksMatchReferenceDigest(index: Int) throws {
        let (type, blocks, digest, halfOffsets) = Self.references[index]
        var rng = SplitMix64(state: UInt64(type.rawValue))
        var raw = (0..<(blocks * type.typeSize)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) }
        if let halfOffsets {
            for b in 0..<blocks {
                for o in halfOffsets { raw[b * type.typeSize + o + 1] &= 0xBB }  // exponent < 31
                if type == .q8_K { raw[b * type.typeSize + 3] &= 0x3F }  // f32 d below 2
            }
        } else {
            // Every element is a half or bfloat16: keep exponents below all-ones.
            for i in stride(from: 1, to: raw.count, by: 2) { raw[i] &= type == .f16 ? 0xBB : 0xBF }
        }
        let y = try run(type, raw)
        #expect(y.count == blocks * type.blockSize && y.allSatisfy(\.isFinite))
        #expect(fnv1a(y) == digest, "\(type.name): got 0x\(String(fnv1a(y), radix: 16))")
    }

    @Test func badInputIsAnErrorNotACrash() throws {
        var out = [Float](repeating: 0, count: 256)
        func attempt(_ type: GGMLType, _ byteCount: Int, _ count: Int) -> PruneError? {
            let bytes = [UInt8](repeating: 0, count: byteCount)
            do {
                try bytes.withUnsafeBytes { raw in
                    try out.withUnsafeMutableBufferPointer { buf in
                        guard let dst = buf.baseAddress else { return }
                        try dequantize(type, raw, count: count, into: dst)
                    }
                }
                return nil
            } catch let e as PruneError { return e } catch { return PruneError(.io, "\(error)") }
        }
        let short = try #require(attempt(.q8_0, 10, 32))
        #expect(short.code == .truncated && short.message.contains("10 bytes"))
        let partial = try #require(attempt(.q4_K, 144, 100))
        #expect(partial.code == .badFormat && partial.message.contains("'100'") && partial.message.contains("256"))
        let iq = try #require(attempt(.iq2_xs, GGMLType.iq2_xs.typeSize, 256))
        #expect(iq.code == .unsupported && iq.message.contains("IQ2_XS") && iq.message.contains("Q4_K"))
    }

    @Test func q8_0EncodingFollowsGGML() throws {
        // amax = 127 gives d = 1: q = round(x) with halves away from zero, as C's roundf.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = 0.49; x[4] = -126.5
        let bytes = try x.withUnsafeBufferPointer { try quantize(.q8_0, $0) }
        #expect(bytes.count == 34 && bytes[0] == 0x00 && bytes[1] == 0x3C)  // d = 1.0 as f16
        #expect(Array(bytes[2..<7]).map { Int8(bitPattern: $0) } == [127, 3, -3, 0, -127])
        // An all-zero block stores d = 0 and q = 0.
        let zeros = try [Float](repeating: 0, count: 32).withUnsafeBufferPointer { try quantize(.q8_0, $0) }
        #expect(zeros == [UInt8](repeating: 0, count: 34))
    }

    @Test(arguments: [(Float.nan, "value 'nan' at index 40"), (.infinity, "value 'inf' at index 40"), (1e10, "'1e+10' at indices 32..<64")])
    func q8_0RejectsValuesItCannotStore(bad: Float, fragment: String) throws {
        var x = [Float](repeating: 1, count: 64)
        x[40] = bad
        let e = try #require(throws: PruneError.self) { try x.withUnsafeBufferPointer { try quantize(.q8_0, $0) } }
        #expect(e.message.contains(fragment), "\(e.message)")
    }
}
