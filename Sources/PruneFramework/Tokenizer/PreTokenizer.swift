/// How a byte-level BPE tokenizer splits text into pre-tokens before merging.
///
/// Each model family splits with a regular expression; these are hand-written scanners over
/// Unicode scalars that reproduce llama.cpp's splitters (`unicode_regex_split_custom_gpt2`,
/// `..._llama3` in `unicode.cpp`, and the `regex_exprs` lists in `llama-vocab.cpp`):
///
/// 1. `gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
/// 2. `smollm` (also StarCoder, Refact, Command-R, CodeShell, EXAONE, Minerva): first `\p{N}`, so
///    that every number scalar is a pre-token of its own, then the gpt2 expression on the text
///    between numbers.
/// 3. `llama3`: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
///    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`; Llama 3 proper also skips merging when a
///    whole pre-token is a vocabulary entry (`ignore_merges`).
/// 4. `qwen2`: the llama3 expression with `\p{N}` in place of `\p{N}{1,3}`.
///
/// `\p{L}` is general category L*, `\p{N}` is N*, and `\s` is the Unicode White_Space property.
struct PreTokenizer: Sendable, Equatable {
    /// The family of split expression.
    enum Pattern: Sendable, Equatable { case gpt2, llama3 }

    /// The split expression.
    let pattern: Pattern
    /// For `gpt2`: split every number scalar into its own pre-token before the expression runs.
    let isolateDigits: Bool
    /// For `llama3`: the most number scalars in one pre-token (3 for Llama 3, 1 for Qwen2).
    let maxDigits: Int
    /// Whether a pre-token that is itself a vocabulary entry is emitted without merging.
    let ignoreMerges: Bool

    static let gpt2 = PreTokenizer(pattern: .gpt2, isolateDigits: false, maxDigits: 0, ignoreMerges: false)
    static let smollm = PreTokenizer(pattern: .gpt2, isolateDigits: true, maxDigits: 0, ignoreMerges: false)
    static let llama3 = PreTokenizer(pattern: .llama3, isolateDigits: false, maxDigits: 3, ignoreMerges: true)
    /// DBRX and Smaug: Llama 3's expression without `ignore_merges`.
    static let llama3Merging = PreTokenizer(pattern: .llama3, isolateDigits: false, maxDigits: 3, ignoreMerges: false)
    static let qwen2 = PreTokenizer(pattern: .llama3, isolateDigits: false, maxDigits: 1, ignoreMerges: false)

    /// The `tokenizer.ggml.pre` names understood, as llama.cpp spells them.
    static let byName: [String: PreTokenizer] = [
        "gpt2": .gpt2, "gpt-2": .gpt2, "phi-2": .gpt2, "roberta-bpe": .gpt2, "mpt": .gpt2,
        "olmo": .gpt2, "jais": .gpt2,
        "smollm": .smollm, "starcoder": .smollm, "refact": .smollm, "command-r": .smollm,
        "codeshell": .smollm, "exaone": .smollm, "minerva-7b": .smollm,
        "llama3": .llama3, "llama-v3": .llama3, "llama-bpe": .llama3, "falcon3": .llama3,
        "dbrx": .llama3Merging, "smaug-bpe": .llama3Merging,
        "qwen2": .qwen2, "stablelm2": .qwen2, "megrez": .qwen2, "deepseek-r1-qwen": .qwen2,
    ]

    /// The pre-tokenizer that a `tokenizer.ggml.pre` name stands for.
    static func named(_ name: String) throws -> PreTokenizer {
        guard let p = byName[name] else {
            let known = byName.keys.sorted().joined(separator: ", ")
            throw PruneError(.unsupported, "BPE tokenizer: pre-tokenizer '\(ByteReader.shown(name))' is not supported; supported: \(known)")
        }
        return p
    }

    // MARK: Scalar classes

    /// A scalar's class for the split expressions; the four classes are disjoint.
    enum Class {
        static let other: UInt8 = 0
        static let letter: UInt8 = 1
        static let number: UInt8 = 2
        static let space: UInt8 = 3
    }

    /// Classes of the ASCII scalars.
    static let asciiClasses: [UInt8] = (0..<128).map { classifySlow(UInt32($0)) }

    /// The class of a scalar value (letter, number, white space or other).
    @inline(__always)
    static func classify(_ v: UInt32) -> UInt8 {
        v < 128 ? asciiClasses[Int(v)] : classifySlow(v)
    }

    /// The class of a scalar value from its Unicode properties.
    static func classifySlow(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return Class.other }
        let p = s.properties
        if p.isWhitespace { return Class.space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return Class.letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return Class.number
        default:
            return Class.other
        }
    }

    // MARK: Splitting

    /// Appends the end index of each pre-token of `cps[lo..<hi]` to `ends`.
    ///
    /// - Parameters:
    ///   - ends: receives one exclusive end index per pre-token, in order; the pre-tokens tile `lo..<hi`.
    ///   - cps: scalar values, `[n]`.
    ///   - cls: their classes from `classify`, `[n]`.
    ///   - lo, hi: the range to split.
    func split(into ends: inout [Int], _ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>,
               _ lo: Int, _ hi: Int) {
        switch pattern {
        case .llama3:
            Self.splitLlama3(into: &ends, cps, cls, lo, hi, maxDigits: maxDigits)
        case .gpt2 where isolateDigits:
            var start = lo
            for i in lo..<hi where cls[i] == Class.number {
                Self.splitGPT2(into: &ends, cps, cls, start, i)
                ends.append(i + 1)
                start = i + 1
            }
            Self.splitGPT2(into: &ends, cps, cls, start, hi)
        case .gpt2:
            Self.splitGPT2(into: &ends, cps, cls, lo, hi)
        }
    }

    /// The length of a contraction (`'s 't 'm 'd 're 've 'll`) starting at `p`, or 0.
    @inline(__always)
    static func contractionLength(_ cps: UnsafeBufferPointer<UInt32>, _ p: Int, _ hi: Int, ignoreCase: Bool) -> Int {
        guard cps[p] == 0x27, p + 1 < hi else { return 0 }
        func lower(_ c: UInt32) -> UInt32 { ignoreCase && (0x41...0x5A).contains(c) ? c + 0x20 : c }
        let a = lower(cps[p + 1])
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }  // s t m d
        guard p + 2 < hi else { return 0 }
        let b = lower(cps[p + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    /// The end of a white-space run for `\s+(?!\S)|\s+` starting at `p` (which is white space).
    @inline(__always)
    static func spaceRunEnd(_ cls: UnsafeBufferPointer<UInt8>, _ p: Int, _ hi: Int) -> Int {
        var e = p
        while e < hi && cls[e] == Class.space { e += 1 }
        // Before a non-space, leave the last space to prefix the next pre-token.
        return (e - p > 1 && e < hi) ? e - 1 : e
    }

    /// The gpt2 expression over `cps[lo..<hi]`.
    static func splitGPT2(into ends: inout [Int], _ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>,
                          _ lo: Int, _ hi: Int) {
        var p = lo
        while p < hi {
            let c = cps[p]
            let n = contractionLength(cps, p, hi, ignoreCase: false)
            if n > 0 {
                p += n
                ends.append(p)
                continue
            }
            // ` ?X+` for X = letter, number, other: the class after an optional leading space.
            let q = c == 0x20 ? p + 1 : p
            if q < hi && cls[q] != Class.space {
                let k = cls[q]
                var e = q + 1
                while e < hi && cls[e] == k { e += 1 }
                p = e
            } else {
                p = spaceRunEnd(cls, p, hi)
            }
            ends.append(p)
        }
    }

    /// The llama3 expression over `cps[lo..<hi]`, with at most `maxDigits` numbers per pre-token.
    static func splitLlama3(into ends: inout [Int], _ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>,
                            _ lo: Int, _ hi: Int, maxDigits: Int) {
        var p = lo
        while p < hi {
            let c = cps[p], k = cls[p]
            let isCRLF = c == 0x0D || c == 0x0A
            let n = contractionLength(cps, p, hi, ignoreCase: true)
            if n > 0 {
                p += n
            } else if !isCRLF && k != Class.number && (k == Class.letter || (p + 1 < hi && cls[p + 1] == Class.letter)) {
                // [^\r\n\p{L}\p{N}]?\p{L}+
                p += 1
                while p < hi && cls[p] == Class.letter { p += 1 }
            } else if k == Class.number {
                // \p{N}{1,maxDigits}
                let start = p
                while p < hi && cls[p] == Class.number && p - start < maxDigits { p += 1 }
            } else if let e = otherRunEnd(cps, cls, p, hi) {
                p = e
            } else {
                p = llama3SpaceEnd(cps, cls, p, hi)
            }
            ends.append(p)
        }
    }

    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*` at `p`: its end, or nil when it does not match.
    @inline(__always)
    static func otherRunEnd(_ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ p: Int, _ hi: Int) -> Int? {
        let q = cps[p] == 0x20 ? p + 1 : p
        guard q < hi, cls[q] == Class.other else { return nil }
        var e = q + 1
        while e < hi && cls[e] == Class.other { e += 1 }
        while e < hi && (cps[e] == 0x0D || cps[e] == 0x0A) { e += 1 }
        return e
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+` at `p`: its end (at least `p + 1`).
    @inline(__always)
    static func llama3SpaceEnd(_ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ p: Int, _ hi: Int) -> Int {
        var e = p, lastNewline = -1
        while e < hi && cls[e] == Class.space {
            if cps[e] == 0x0D || cps[e] == 0x0A { lastNewline = e + 1 }
            e += 1
        }
        if lastNewline > 0 { return lastNewline }
        if e == p { return p + 1 }
        return (e - p > 1 && e < hi) ? e - 1 : e
    }
}
