import Foundation

extension BPETokenizer {
    /// Encodes UTF-8 bytes (valid, as they come from a `String`).
    func encode(utf8 text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3 + 1)
        var scratch = Scratch()
        guard specials.hasCandidates(parseSpecial: parseSpecial) else {
            encodeOrdinary(text, 0, text.count, scratch: &scratch, into: &out)
            return out
        }
        var start = 0, i = 0
        while i < text.count {
            if let (length, id) = specials.match(text, at: i, parseSpecial: parseSpecial) {
                encodeOrdinary(text, start, i, scratch: &scratch, into: &out)
                out.append(id)
                i += length
                start = i
            } else {
                i += 1
            }
        }
        encodeOrdinary(text, start, text.count, scratch: &scratch, into: &out)
        return out
    }

    /// Buffers reused across the text fragments of one `encode` call.
    struct Scratch {
        /// Scalar values of the fragment.
        var scalars: [UInt32] = []
        /// Classes of the scalars (`PreTokenizer.Class`).
        var classes: [UInt8] = []
        /// Byte offset of each scalar within the text, plus the fragment's end.
        var offsets: [Int] = []
        /// Pre-token end indices (in scalars).
        var ends: [Int] = []
    }

    /// Encodes `text[lo..<hi]`, which holds no special tokens: pre-tokenize, then merge each piece.
    func encodeOrdinary(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int,
                        scratch s: inout Scratch, into out: inout [Int32]) {
        guard lo < hi else { return }
        Self.decodeScalars(text, lo, hi, into: &s)
        s.ends.removeAll(keepingCapacity: true)
        s.scalars.withUnsafeBufferPointer { cps in
            s.classes.withUnsafeBufferPointer { cls in
                preTokenizer.split(into: &s.ends, cps, cls, 0, cps.count)
            }
        }
        var start = 0
        for end in s.ends {
            let piece = UnsafeBufferPointer(rebasing: text[s.offsets[start]..<s.offsets[end]])
            start = end
            encodePiece(piece, into: &out)
        }
    }

    /// Splits `text[lo..<hi]` into scalar values, their classes and byte offsets.
    static func decodeScalars(_ text: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, into s: inout Scratch) {
        s.scalars.removeAll(keepingCapacity: true)
        s.classes.removeAll(keepingCapacity: true)
        s.offsets.removeAll(keepingCapacity: true)
        var i = lo
        while i < hi {
            let b0 = UInt32(text[i])
            var v = b0, length = 1
            if b0 >= 0xF0 && i + 3 < hi {
                v = (b0 & 0x07) << 18 | (UInt32(text[i + 1]) & 0x3F) << 12 | (UInt32(text[i + 2]) & 0x3F) << 6 | (UInt32(text[i + 3]) & 0x3F)
                length = 4
            } else if b0 >= 0xE0 && i + 2 < hi {
                v = (b0 & 0x0F) << 12 | (UInt32(text[i + 1]) & 0x3F) << 6 | (UInt32(text[i + 2]) & 0x3F)
                length = 3
            } else if b0 >= 0xC0 && i + 1 < hi {
                v = (b0 & 0x1F) << 6 | (UInt32(text[i + 1]) & 0x3F)
                length = 2
            }
            s.scalars.append(v)
            s.classes.append(PreTokenizer.classify(v))
            s.offsets.append(i)
            i += length
        }
        s.offsets.append(hi)
    }

    /// Appends the ids of one pre-token, from the cache or by merging its bytes.
    func encodePiece(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        if piece.count == 1 {
            merges.apply(piece, into: &out)
            return
        }
        let key = Array(piece)
        if let hit = cache.lookup(key) {
            out.append(contentsOf: hit)
            return
        }
        var ids: [Int32] = []
        if preTokenizer.ignoreMerges, let id = self.ids[ByteUnicode.encode(piece)] {
            ids.append(id)
        } else {
            merges.apply(piece, into: &ids)
        }
        cache.store(key, ids)
        out.append(contentsOf: ids)
    }
}

/// Finds special tokens in UTF-8 text: leftmost first, then longest.
///
/// As in llama.cpp (`tokenizer_st_partition`) and Hugging Face, user-defined tokens (added tokens
/// that are not special, such as Qwen2.5's `<tool_call>`) are matched always; control tokens
/// (`<|im_start|>`) only when special tokens are parsed.
struct SpecialTokenMatcher: Sendable {
    /// A special token: its bytes, id, and whether it is matched without `parseSpecial`.
    typealias Candidate = (bytes: [UInt8], id: Int32, always: Bool)

    /// Candidates by first byte, longest first.
    let byFirstByte: [[Candidate]]
    /// The number of candidates, and of those matched without `parseSpecial`.
    let count: Int, alwaysCount: Int

    init(_ tokens: [Candidate]) {
        var table = [[Candidate]](repeating: [], count: 256)
        for t in tokens {
            if let first = t.bytes.first { table[Int(first)].append(t) }
        }
        for b in 0..<256 { table[b].sort { $0.bytes.count > $1.bytes.count } }
        byFirstByte = table
        count = tokens.count
        alwaysCount = tokens.filter(\.always).count
    }

    /// Whether any token can match with this `parseSpecial`.
    func hasCandidates(parseSpecial: Bool) -> Bool {
        parseSpecial ? count > 0 : alwaysCount > 0
    }

    /// The length and id of the longest token that starts at byte `i` and may match with this
    /// `parseSpecial`, or nil.
    @inline(__always)
    func match(_ text: UnsafeBufferPointer<UInt8>, at i: Int, parseSpecial: Bool) -> (Int, Int32)? {
        let candidates = byFirstByte[Int(text[i])]
        guard !candidates.isEmpty else { return nil }
        for c in candidates where (parseSpecial || c.always) && c.bytes.count <= text.count - i {
            var same = true
            for k in 1..<c.bytes.count where text[i + k] != c.bytes[k] {
                same = false
                break
            }
            if same { return (c.bytes.count, c.id) }
        }
        return nil
    }
}

/// A thread-safe map from pre-token bytes to token ids, cleared when it grows past `capacity`.
final class PieceCache: @unchecked Sendable {
    /// Entries kept before the cache starts over.
    let capacity = 1 << 18
    private let lock = NSLock()
    private var map: [[UInt8]: [Int32]] = [:]

    /// The cached ids of a pre-token, or nil.
    func lookup(_ key: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return map[key]
    }

    /// Caches the ids of a pre-token.
    func store(_ key: [UInt8], _ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if map.count >= capacity { map.removeAll(keepingCapacity: true) }
        map[key] = ids
    }
}
