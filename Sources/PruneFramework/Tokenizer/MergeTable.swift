/// The ranked merge rules of a byte-level BPE vocabulary, on symbol ids.
///
/// Symbols are vocabulary ids, plus ids at and above `vocabSize` for strings that merges produce
/// or bytes that the vocabulary lacks (llama.cpp merges such strings too and, if one survives to
/// the end, emits the byte tokens of its bytes instead).
struct MergeTable: Sendable {
    /// The symbol each byte starts as, indexed by byte.
    let byteSymbol: [Int32]
    /// `(left << 32) | right` to `(rank << 32) | merged symbol`; the first rule of a pair wins.
    let rules: [UInt64: UInt64]
    /// Raw bytes of the symbols at and above `vocabSize`, indexed by `symbol - vocabSize`.
    let extraBytes: [[UInt8]]
    /// The number of vocabulary tokens.
    let vocabSize: Int

    /// Builds the table from merge pairs by rank and the vocabulary's entry-to-id map.
    init(pairs: [(String, String)], ids: [String: Int32], vocabSize: Int) {
        var extra: [String: Int32] = [:]
        var extraBytes: [[UInt8]] = []
        func symbol(_ s: String, create: Bool) -> Int32? {
            if let id = ids[s] ?? extra[s] { return id }
            guard create else { return nil }
            let id = Int32(vocabSize + extraBytes.count)
            extra[s] = id
            extraBytes.append(ByteUnicode.decode(s))
            return id
        }
        var byteSymbol = [Int32](repeating: 0, count: 256)
        for b in 0..<256 {
            byteSymbol[b] = symbol(ByteUnicode.encode([UInt8(b)]), create: true) ?? 0
        }
        // Every merge result gets a symbol first, because a rule may use a part made by a later rule.
        let merged = pairs.map { $0.0 + $0.1 }
        for m in merged { _ = symbol(m, create: true) }
        var rules: [UInt64: UInt64] = [:]
        rules.reserveCapacity(pairs.count)
        for (rank, (a, b)) in pairs.enumerated() {
            guard let l = symbol(a, create: false), let r = symbol(b, create: false),
                  let m = symbol(merged[rank], create: false) else { continue }
            let key = UInt64(UInt32(l)) << 32 | UInt64(UInt32(r))
            if rules[key] == nil {
                rules[key] = UInt64(rank) << 32 | UInt64(UInt32(m))
            }
        }
        self.byteSymbol = byteSymbol
        self.rules = rules
        self.extraBytes = extraBytes
        self.vocabSize = vocabSize
    }

    /// The rule for merging `left` and `right`: its rank and the merged symbol, or nil.
    @inline(__always)
    func rule(_ left: Int32, _ right: Int32) -> (rank: UInt32, merged: Int32)? {
        guard let v = rules[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] else { return nil }
        return (UInt32(v >> 32), Int32(truncatingIfNeeded: v & 0xFFFF_FFFF))
    }

    /// One candidate merge of two adjacent symbols.
    struct Candidate {
        var rank: UInt32
        var left: Int32
        var right: Int32
        var leftSymbol: Int32
        var rightSymbol: Int32
        var merged: Int32

        /// Merged before `other`: lower rank first, then further left.
        @inline(__always)
        func before(_ other: Candidate) -> Bool {
            rank != other.rank ? rank < other.rank : left < other.left
        }
    }

    /// Merges the bytes of one pre-token and appends the resulting token ids to `out`.
    ///
    /// Symbols form a linked list; candidates wait in a binary heap ordered by (rank, position),
    /// and a candidate whose symbols changed since it was queued is dropped when popped.
    func apply(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        let n = bytes.count
        if n == 1 {
            appendSymbol(byteSymbol[Int(bytes[0])], into: &out)
            return
        }
        var sym = bytes.map { byteSymbol[Int($0)] }
        var prev = (0..<n).map { $0 - 1 }
        var next = (0..<n).map { $0 + 1 }
        var heap: [Candidate] = []
        heap.reserveCapacity(n)
        func push(_ l: Int, _ r: Int) {
            guard let rule = rule(sym[l], sym[r]) else { return }
            heap.append(Candidate(rank: rule.rank, left: Int32(l), right: Int32(r),
                                  leftSymbol: sym[l], rightSymbol: sym[r], merged: rule.merged))
            var i = heap.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard heap[i].before(heap[parent]) else { break }
                heap.swapAt(i, parent)
                i = parent
            }
        }
        for i in 0..<(n - 1) { push(i, i + 1) }
        while let c = Self.popMin(&heap) {
            let l = Int(c.left), r = Int(c.right)
            guard next[l] == r, sym[l] == c.leftSymbol, sym[r] == c.rightSymbol else { continue }
            sym[l] = c.merged
            sym[r] = -1
            next[l] = next[r]
            if next[r] < n { prev[next[r]] = l }
            if prev[l] >= 0 { push(prev[l], l) }
            if next[l] < n { push(l, next[l]) }
        }
        var i = 0
        while i < n {
            appendSymbol(sym[i], into: &out)
            i = next[i]
        }
    }

    /// Removes and returns the first candidate of a binary heap.
    @inline(__always)
    static func popMin(_ heap: inout [Candidate]) -> Candidate? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return top }
        heap[0] = last
        var i = 0
        let count = heap.count
        while true {
            let a = 2 * i + 1, b = a + 1
            var best = i
            if a < count && heap[a].before(heap[best]) { best = a }
            if b < count && heap[b].before(heap[best]) { best = b }
            if best == i { break }
            heap.swapAt(i, best)
            i = best
        }
        return top
    }

    /// Appends a symbol's token id, or for a symbol outside the vocabulary the ids of its bytes.
    @inline(__always)
    func appendSymbol(_ s: Int32, into out: inout [Int32]) {
        if Int(s) < vocabSize {
            out.append(s)
            return
        }
        for b in extraBytes[Int(s) - vocabSize] {
            let id = byteSymbol[Int(b)]
            if Int(id) < vocabSize { out.append(id) }
        }
    }
}
