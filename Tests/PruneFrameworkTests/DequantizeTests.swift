import Foundation
import Testing
@testable import PruneFramework

/// Each dequantiser against a block built byte by byte, with values worked out by hand.
@Suite struct DequantizeTests {
    func run(_ type: GGMLType, _ bytes: [UInt8]) throws -> [Float] {
        let n = bytes.count / type.typeSize * type.blockSize
        var out = [Float](repeating: .nan, count: n)
        try bytes.withUnsafeBytes { raw in
            try out.withUnsafeMutableBufferPointer { try dequantize(type, raw, count: n, into: $0.baseAddress!) }
        }
        return out
    }

    func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }

    @Test func f16AndBF16KnownBitPatterns() throws {
        let halves: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555, 0x0000, 0x8000]
        let want: [Float] = [1, -2, 65504, 5.9604645e-8, 0.33325195, 0, -0]
        #expect(try run(.f16, halves.flatMap(le16)) == want)
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

    @Test func shortInputIsAnErrorNotACrash() {
        var out = [Float](repeating: 0, count: 32)
        let bytes = [UInt8](repeating: 0, count: 10)
        #expect(throws: PruneError.self) {
            try bytes.withUnsafeBytes { raw in try out.withUnsafeMutableBufferPointer { try dequantize(.q8_0, raw, count: 32, into: $0.baseAddress!) } }
        }
        var big = [Float](repeating: 0, count: 256)
        let iq = [UInt8](repeating: 0, count: GGMLType.iq2_xs.typeSize)
        do {
            try iq.withUnsafeBytes { raw in try big.withUnsafeMutableBufferPointer { try dequantize(.iq2_xs, raw, count: 256, into: $0.baseAddress!) } }
            Issue.record("IQ2_XS should be reported as unsupported")
        } catch let e as PruneError {
            #expect(e.code == .unsupported && e.message.contains("IQ2_XS"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
