import Foundation
import Testing
@testable import PruneFramework

/// Mutated model files never crash, hang or over-allocate the readers: each one loads or ends in a
/// `PruneError`; any other error type, or a message that breaks the error template (empty, several
/// lines, over 2,000 bytes), fails the test, naming the case, the seed and the mutations.
///
/// - Seed: `ModelFuzzTests.seed` = 0x5EED_2026_0002. Case `i` draws from its own generator,
///   `ModelFuzzRandom(seed: seed &+ i &* 0x9E37_79B9_7F4A_7C15)`, so one case replays alone.
/// - Cases: 2,900 (`counts`), by index: 1,500 GGUF, 600 safetensors, 500 config.json (or shard
///   index), 300 tokenizer.json; about 15 seconds in release mode on 2 cores.
/// - Memory cap: the cases run inside `MemoryBudget.$limit.withValue(64 MiB)`, so a load that would
///   allocate more is refused before allocating; every other length is capped by the file's size.
///   Run alone with `PRUNE_FUZZ_TRACE=1`, the process's peak RSS stays under 50 MiB for 10,000 cases.
/// - Hang: a case takes milliseconds (at most about 0.4 s, when Swift Testing captures the backtrace
///   of a thrown error); one of over 10 s is reported as a hang.
/// - Base files, built in the test (`FuzzBases`): GGUF `llama-f32` (the tokenizer's tokens, types,
///   merges), `deci-f16` (per-layer widths as arrays), `qwen2-q8_0` (q/k/v biases), `llama-q4_k_m`
///   (Q4_K and Q6_K blocks), `llama-q5_1`, `all-types` (every metadata value type, nested and empty
///   arrays, f32 scores, alignment 64, BF16 matrices); Hugging Face directories `llama-f32`,
///   `qwen2-bf16`, `pruned-f16` (`prune_per_layer`), `llama-f32-sharded` (two shards and
///   model.safetensors.index.json), each with config.json, tokenizer.json, tokenizer_config.json.
///   The tokenizer: 256 byte tokens, 4 merges, a control and a user-defined token.
/// - GGUF mutations (1–3, on fields found by walking the valid file, `GGUFLayout`): a header count,
///   key length, value type, value (of a model key or another), string length, array element type
///   or count, array element, tensor name length, n_dims or a dim, ggml type or data offset set to
///   a boundary (0, 1, -1, 2^31-1, 2^32-1, 2^63-1, 2^64-1, 4096, 49152, ±1, ×2, small, random), a
///   float to NaN, ±inf, 0, -1, a denormal or max, a bit of a field flipped; a block scale or a
///   value in the data set to NaN, inf or max (f16, bf16, f32); a bit flipped; a key or tensor name
///   renamed (a byte, a layer number, a copy of another name: duplicates); two fields swapped;
///   bytes deleted, inserted or duplicated before the data; a truncation.
/// - safetensors mutations (1–3, on a weights file or shard): the header's JSON mutated (below),
///   with the 8-byte length then fixed (85 %) or left; the length set to a boundary; a value in the
///   data set to NaN or inf; the data truncated.
/// - JSON mutations (1–3 for config.json, the shard index, tokenizer.json; `JSONMutator`): a value
///   replaced (boundary numbers such as -1, 0, 2^63, 1e400, 1e-320; another type; another dtype,
///   architecture, activation; a long string; an array emptied, shortened, lengthened, reversed,
///   of 10,000 numbers; an object emptied or given an unknown key; nesting up to 5,000 deep), a
///   member removed, duplicated (a duplicate key) or swapped with another; a config.json key set or
///   added; as text: a bit flip, a deletion, an inserted `{}[]:,"\-.e0` or control byte, a
///   truncation, a duplicated range, a number replaced by `1e400`, `NaN`, 2^64 and the like.
/// - APIs driven: `GGUFFile(path:)`, `ModelSource(path:)` then `tensorTypes()`, `config()`,
///   `tokenizer()` (encoding and decoding a short text) and `load()`; `SafetensorsFile(path:)`,
///   `HFConfig(path:)` then `modelConfig()`; `BPETokenizer(tokenizerJSONPath:)`.
/// - Replay: `PRUNE_FUZZ_CASE=i` runs case `i` alone, printing each call's outcome, and keeps its
///   files (pass `PRUNE_FUZZ_SEED` and `PRUNE_FUZZ_CASES` too when the failure was found with
///   them; the failure names all three). `PRUNE_FUZZ_SEED=0x...` and `PRUNE_FUZZ_CASES=n` (split in
///   the proportions above) explore further; `PRUNE_FUZZ_TRACE=1` prints each case before it runs,
///   so after a crash the last case printed is the culprit.
/// - Output: one line, "model fuzz: GGUF 1500 cases (E PruneErrors, L loaded), ..., 0 crashes,
///   slowest case #I (T ms), seed S".
@Suite struct ModelFuzzTests {
    static let seed: UInt64 = 0x5EED_2026_0002
    /// Cases per corpus, in index order.
    static let counts: [(Corpus, Int)] = [(.gguf, 1_500), (.safetensors, 600), (.configJSON, 500), (.tokenizerJSON, 300)]
    /// What a load may allocate (`MemoryBudget.limit`).
    static let memoryCap = 64 << 20

    enum Corpus: String { case gguf = "GGUF", safetensors, configJSON = "config.json", tokenizerJSON = "tokenizer.json" }

    /// One mutated input: the files to write and what was done to them.
    struct Mutant {
        var corpus: Corpus
        var base: String
        /// File name to contents (every file of a Hugging Face directory, or the one GGUF).
        var files: [(name: String, bytes: [UInt8])]
        var steps: [String]
        var label: String { "\(corpus.rawValue) '\(base)': \(steps.joined(separator: "; "))" }
    }

    /// How a run is set up: the defaults, or the `PRUNE_FUZZ_*` environment variables.
    struct Settings {
        var seed = ModelFuzzTests.seed
        var counts = ModelFuzzTests.counts
        /// `PRUNE_FUZZ_CASES` as given (the counts depend on it, so a replay passes it on).
        var cases: String?
        /// `PRUNE_FUZZ_CASE`: the one case to run.
        var only: Int?
        var trace = false

        init(_ env: [String: String]) {
            seed = env["PRUNE_FUZZ_SEED"].flatMap(Self.number) ?? seed
            cases = env["PRUNE_FUZZ_CASES"]
            if let n = cases.flatMap(Self.number) {
                // The same proportions, scaled to about n cases.
                let sum = counts.reduce(0) { $0 + $1.1 }
                counts = counts.map { ($0.0, max(1, $0.1 * Int(n) / sum)) }
            }
            only = env["PRUNE_FUZZ_CASE"].flatMap(Self.number).map(Int.init)
            trace = env["PRUNE_FUZZ_TRACE"] != nil || only != nil
        }

        var total: Int { counts.reduce(0) { $0 + $1.1 } }

        /// The environment that runs case `i` alone.
        func replay(_ i: Int) -> String {
            "PRUNE_FUZZ_CASE=\(i) PRUNE_FUZZ_SEED=0x\(String(seed, radix: 16))" + (cases.map { " PRUNE_FUZZ_CASES=\($0)" } ?? "")
        }

        /// A hex (`0x...`) or decimal number.
        static func number(_ s: String) -> UInt64? {
            let t = s.replacingOccurrences(of: "_", with: "")
            return t.hasPrefix("0x") ? UInt64(t.dropFirst(2), radix: 16) : UInt64(t)
        }
    }

    @Test func mutatedModelFilesEndInAModelOrAPruneError() throws {
        let s = Settings(ProcessInfo.processInfo.environment)
        let dir = NSTemporaryDirectory() + "prune-model-fuzz-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A single case keeps its files for a closer look.
        defer { if s.only == nil { try? FileManager.default.removeItem(atPath: dir) } else { print("model fuzz: the mutant is in \(dir)/work") } }
        let bases = try FuzzBases(dir: dir + "/bases")
        // Every base loads, and the layout walker agrees with the reader (else mutations miss).
        for b in bases.gguf {
            let f = try GGUFFile(path: "\(bases.dir)/\(b.name).gguf")
            #expect(b.layout.dataOffset == f.dataOffset && b.layout.tensors.map(\.offset) == f.tensors.map(\.offset), "GGUFLayout misreads '\(b.name)'")
            _ = try ModelSource(path: f.path).load()
        }
        for b in bases.hf { _ = try ModelSource(path: "\(bases.dir)/\(b.name)").load() }
        var tally: [Corpus: [Outcome: Int]] = [:]
        var slowest = (ms: 0, index: 0)
        MemoryBudget.$limit.withValue(Self.memoryCap) {
            for i in s.only.map({ [$0] }) ?? Array(0..<s.total) {
                let m = Self.mutant(case: i, seed: s.seed, counts: s.counts, bases: bases)
                let label = "case \(i) (\(s.replay(i))): \(m.label)"
                if s.trace { print("model fuzz \(label)") }
                let start = DispatchTime.now().uptimeNanoseconds
                // One directory per base, so no file of another base is left beside the mutant.
                let outcome = Self.run(m, in: dir + "/work/" + m.base, label: label, trace: s.trace)
                let ms = Int((DispatchTime.now().uptimeNanoseconds - start) / 1_000_000)
                if ms > slowest.ms { slowest = (ms, i) }
                if s.trace, let peak = Self.peakResidentMiB() { print("  peak RSS of the process so far: \(peak) MiB") }
                // A case takes milliseconds (up to about 0.4 s when Swift Testing captures the
                // backtrace of a thrown error); ten seconds mean a reader loops on a corrupt count.
                if ms > 10_000 { Issue.record("\(label): took \(ms) ms, a hang") }
                tally[m.corpus, default: [:]][outcome, default: 0] += 1
            }
        }
        let parts = s.counts.map { c, _ in
            let t = tally[c] ?? [:]
            let other = t[.otherError].map { ", \($0) OTHER ERRORS" } ?? ""
            return "\(c.rawValue) \(t.values.reduce(0, +)) cases (\(t[.pruneError] ?? 0) PruneErrors, \(t[.loaded] ?? 0) loaded\(other))"
        }
        print("model fuzz: \(parts.joined(separator: ", ")), 0 crashes, slowest case #\(slowest.index) (\(slowest.ms) ms), seed 0x\(String(s.seed, radix: 16))")
        guard s.only == nil else { return }
        // The mutations must reach past the header checks into the loaders, and change something.
        for (c, n) in s.counts where n >= 100 {
            let loaded = tally[c]?[.loaded] ?? 0
            #expect(loaded >= n / 50 && loaded < n, "\(c.rawValue): \(loaded) of \(n) mutants loaded")
        }
    }

    /// The process's peak resident memory (`VmHWM`, Linux only), in MiB.
    static func peakResidentMiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kb / 1024
    }

    // MARK: - Cases

    /// The mutant of case `index`.
    static func mutant(case index: Int, seed: UInt64, counts: [(Corpus, Int)], bases: FuzzBases) -> Mutant {
        var rng = ModelFuzzRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        var k = index
        let corpus = counts.first { c, n in
            if k < n { return true }
            k -= n
            return false
        }?.0 ?? .gguf
        if corpus == .gguf {
            let base = rng.pick(bases.gguf)
            var bytes = base.bytes
            let steps = GGUFMutator.mutate(&bytes, base.layout, &rng)
            return Mutant(corpus: corpus, base: base.name, files: [("model.gguf", bytes)], steps: steps)
        }
        let base = rng.pick(bases.hf)
        var files = base.files
        // The file mutated: a weights file (a shard of a sharded model), config.json (or the shard
        // index), tokenizer.json.
        let targets = files.indices.filter { i in
            let name = files[i].name
            switch corpus {
            case .safetensors: return name.hasSuffix(".safetensors")
            case .configJSON: return name == "config.json" || name == "model.safetensors.index.json"
            default: return name == "tokenizer.json"
            }
        }
        let i = corpus == .configJSON && targets.count > 1 && rng.percent(70) ? targets[0] : rng.pick(targets)
        var steps = [files[i].name]
        if corpus == .safetensors {
            steps += mutateSafetensors(&files[i].bytes, &rng)
        } else {
            for _ in 0..<(1 + rng.weighted([50, 35, 15])) {
                steps.append(mutateJSON(&files[i].bytes, keys: files[i].name == "config.json" ? configKeys : [], &rng))
            }
        }
        return Mutant(corpus: corpus, base: base.name, files: files, steps: steps)
    }

    /// config.json keys `HFConfig` reads, set or added by the config mutations.
    static let configKeys = [
        "architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "vocab_size", "max_position_embeddings",
        "tie_word_embeddings", "bos_token_id", "eos_token_id", "torch_dtype", "hidden_act", "attention_bias", "mlp_bias",
        "rope_scaling", "prune_per_layer", "sliding_window", "use_sliding_window",
    ]

    /// One mutation of a JSON file: structural (65 %, a third of those on one of `keys` at the top
    /// level, added when absent) or textual.
    static func mutateJSON(_ bytes: inout [UInt8], keys: [String], _ rng: inout ModelFuzzRandom) -> String {
        guard rng.percent(65), var j = FuzzJSON.parse(bytes) else { return JSONMutator.mutateText(&bytes, &rng) }
        let step: String
        if !keys.isEmpty, rng.percent(35), case .object(var o) = j {
            let key = rng.pick(keys)
            let current = o.first { $0.key == key }?.value ?? rng.pick([.number("1"), .string("x"), .array([.number("2")]), .object([])])
            let (v, what) = JSONMutator.replacement(for: current, key: key, &rng)
            if let at = o.firstIndex(where: { $0.key == key }) { o[at].value = v } else { o.append((key, v)) }
            j = .object(o)
            step = ".\(key) = \(what)"
        } else {
            step = JSONMutator.mutate(&j, &rng)
        }
        bytes = Array(j.text.utf8)
        return step
    }

    /// One to three mutations of a safetensors file: its header JSON (or, harmlessly, its entries'
    /// order or `__metadata__`), its length field, its data.
    static func mutateSafetensors(_ b: inout [UInt8], _ rng: inout ModelFuzzRandom) -> [String] {
        let n = Int(FuzzBytes.get(b, 0, width: 8))
        var header = Array(b[8..<(8 + n)]), data = Array(b[(8 + n)...])
        var steps: [String] = [], length: UInt64? = nil
        for _ in 0..<(1 + rng.weighted([50, 35, 15])) {
            switch rng.weighted([60, 10, 14, 10, 6]) {
            case 0:
                steps.append("header " + mutateJSON(&header, keys: [], &rng))
                if rng.percent(15) { length = length ?? UInt64(n) }
            case 1:
                guard case .object(var o)? = FuzzJSON.parse(header), o.count > 1 else { continue }
                if rng.percent(50) {
                    let (i, j) = (rng.below(o.count), rng.below(o.count))
                    o.swapAt(i, j)
                    steps.append("header entries \(i) and \(j) swapped")
                } else if let m = o.firstIndex(where: { $0.key == "__metadata__" }) {
                    let (k, v) = rng.pick([("format", "np"), ("fuzz", ""), ("\u{0}", "x"), ("format", String(repeating: "p", count: 1_000))])
                    o[m].value = .object(o[m].value.members.filter { $0.key != k } + [(k, .string(v))])
                    steps.append("header __metadata__.\(ByteReader.shown(k)) = '\(v.prefix(20))'")
                }
                header = Array(FuzzJSON.object(o).text.utf8)
            case 2:
                let h = UInt64(header.count), file = UInt64(8 + header.count + data.count)
                let v = rng.pick([0, 1, 2, h &- 1, h + 1, h + 8, file - 8, file, 100_000_000, 100_000_001, 1 << 32,
                                  0x7FFF_FFFF_FFFF_FFFF, 1 << 63, .max, rng.next()])
                length = v
                steps.append("header length = \(FuzzBytes.shown(v))")
            case 3:
                let (at, what) = dataValue(&data, header: header, &rng)
                steps.append("data at \(at) = \(what)")
            default:
                let at = rng.below(max(1, data.count))
                data.removeSubrange(at...)
                steps.append("data truncated at \(at)")
            }
        }
        b = [UInt8](repeating: 0, count: 8) + header + data
        FuzzBytes.set(&b, 0, width: 8, length ?? UInt64(header.count))
        return steps
    }

    /// Sets one value of a tensor (found through the header when it still parses) to NaN, inf, 0
    /// or a large finite value.
    static func dataValue(_ data: inout [UInt8], header: [UInt8], _ rng: inout ModelFuzzRandom) -> (Int, String) {
        let entries = FuzzJSON.parse(header)?.members.compactMap { m -> (String, Int, Int)? in
            let fields = m.value.members
            guard case .string(let dtype)? = fields.first(where: { $0.key == "dtype" })?.value,
                  case .array(let offsets)? = fields.first(where: { $0.key == "data_offsets" })?.value,
                  case .number(let b)? = offsets.first, let begin = Int(b), case .number(let e)? = offsets.last, let end = Int(e) else { return nil }
            return (dtype, begin, end)
        } ?? []
        guard let (dtype, begin, end) = entries.isEmpty ? nil : rng.pick(entries), end > begin else { return (0, "no-op") }
        let size = dtype == "F32" ? 4 : 2
        let at = begin + size * rng.below(max(1, (end - begin) / size))
        let (v, what): (UInt64, String) = switch dtype {
        case "F32": rng.pick([(0x7FC0_0000, "NaN"), (0x7F80_0000, "inf"), (0, "0"), (0x7F7F_FFFF, "max")])
        case "F16": rng.pick([(0x7E00, "NaN"), (0xFC00, "-inf"), (0, "0"), (0x7BFF, "max")])
        default: rng.pick([(0x7FC0, "NaN"), (0x7F80, "inf"), (0, "0"), (0x7F7F, "max")])
        }
        FuzzBytes.set(&data, at, width: size, v)
        return (at, "\(what) (\(dtype))")
    }

    // MARK: - Running a case

    /// How a case ended: the model (the tokenizer, for tokenizer.json) loaded, a `PruneError`, or
    /// another error (recorded as an issue).
    enum Outcome { case loaded, pruneError, otherError }

    /// Writes the mutant's files into `dir` and drives every loading API over them.
    static func run(_ m: Mutant, in dir: String, label: String, trace: Bool) -> Outcome {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (name, bytes) in m.files {
                try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name), options: .atomic)
            }
        } catch {
            Issue.record("\(label): cannot write the mutant: \(error)")
            return .otherError
        }
        var calls = Calls(label: label, trace: trace)
        let loaded = drive(m, in: dir, &calls)
        return calls.otherErrors > 0 ? .otherError : loaded ? .loaded : .pruneError
    }

    /// Opens the mutant with each API in turn; true when the model loaded.
    static func drive(_ m: Mutant, in dir: String, _ calls: inout Calls) -> Bool {
        switch m.corpus {
        case .gguf:
            let path = dir + "/model.gguf"
            guard calls.attempt("GGUFFile", { try GGUFFile(path: path) }) != nil,
                  let source = calls.attempt("ModelSource", { try ModelSource(path: path) }) else { return false }
            return drive(source, &calls)
        case .safetensors, .configJSON:
            for (name, _) in m.files where name.hasSuffix(".safetensors") {
                _ = calls.attempt("SafetensorsFile", { try SafetensorsFile(path: dir + "/" + name) })
            }
            _ = calls.attempt("HFConfig", { try HFConfig(path: dir + "/config.json").modelConfig() })
            // A directory, or its weights file: both name a Hugging Face model.
            let single = m.files.contains { $0.name == "model.safetensors" }
            let path = single && calls.label.utf8.count % 2 == 1 ? dir + "/model.safetensors" : dir
            guard let source = calls.attempt("ModelSource", { try ModelSource(path: path) }) else { return false }
            return drive(source, &calls)
        case .tokenizerJSON:
            guard let t = calls.attempt("BPETokenizer(tokenizerJSONPath:)", { try BPETokenizer(tokenizerJSONPath: dir + "/tokenizer.json") }) else { return false }
            exercise(t)
            return true
        }
    }

    /// The model's config, tensor types, weights and tokenizer; true when the weights loaded.
    static func drive(_ source: ModelSource, _ calls: inout Calls) -> Bool {
        _ = calls.attempt("ModelSource.tensorTypes", { try source.tensorTypes() })
        _ = calls.attempt("ModelSource.config", { try source.config() })
        if let t = calls.attempt("ModelSource.tokenizer", { try source.tokenizer() }) { exercise(t) }
        return calls.attempt("ModelSource.load", { try source.load() }) != nil
    }

    /// Encodes and decodes a short text with every kind of token in it.
    static func exercise(_ t: BPETokenizer) {
        let text = "the quick <|endoftext|> <tool_call> 123 héllo 🙂\n\t the"
        for special in [false, true] {
            let ids = t.encode(text, parseSpecial: special)
            _ = t.decode(ids + [-1, Int32.max])
        }
    }

    /// Runs API calls, recording any error that is not a `PruneError`, or a message that breaks
    /// the error template (empty, several lines, or too long to read).
    struct Calls {
        let label: String
        /// Print each call's outcome and time (`PRUNE_FUZZ_TRACE`).
        let trace: Bool
        /// Whether a message was reported for this case already (the APIs share readers).
        var reported = false
        /// Errors of other types than `PruneError`.
        var otherErrors = 0

        mutating func attempt<T>(_ what: String, _ body: () throws -> T) -> T? {
            let start = DispatchTime.now().uptimeNanoseconds
            func log(_ outcome: String) {
                guard trace else { return }
                print("  \(what): \(outcome) (\((DispatchTime.now().uptimeNanoseconds - start) / 1_000_000) ms)")
            }
            do {
                let v = try body()
                log("ok")
                return v
            } catch let e as PruneError {
                let m = e.message
                log("PruneError(\(e.code.rawValue)): \(m.prefix(300))")
                if !reported, m.isEmpty || m.contains("\n") || m.utf8.count > 2_000 {
                    reported = true
                    Issue.record("\(label): \(what): a PruneError message of \(m.utf8.count) bytes\(m.contains("\n") ? " with a line break" : ""): \(m.prefix(300))")
                }
                return nil
            } catch {
                log("\(type(of: error))")
                otherErrors += 1
                Issue.record("\(label): \(what) threw \(type(of: error)) instead of a PruneError: \(String(describing: error).prefix(300))")
                return nil
            }
        }
    }
}

/// What the fuzz found, one test each, so it stays fixed.
extension ModelFuzzTests {
    /// A GGUF metadata array takes about 48 bytes per element in memory: 2 MB of u8 elements are
    /// refused under a 64 MiB budget before they are read, and read under a larger one.
    @Test func ggufMetadataArraysAreCheckedAgainstTheMemoryBudget() throws {
        var g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.str("fuzz.big")
        g.u32(9)
        g.u32(0)
        g.u64(2_000_000)
        g.bytes += [UInt8](repeating: 0, count: 2_000_000)
        let path = NSTemporaryDirectory() + "prune-fuzz-array-\(UUID().uuidString).gguf"
        try Data(g.bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = try #require(throws: PruneError.self) { try MemoryBudget.$limit.withValue(64 << 20) { try GGUFFile(path: path) } }
        #expect(e.code == .outOfRange && e.message.contains("metadata 'fuzz.big' (an array of 2000000 values, count at byte offset 48) needs 0.09 GiB"), "\(e.message)")
        let f = try MemoryBudget.$limit.withValue(1 << 30) { try GGUFFile(path: path) }
        #expect(f["fuzz.big"]?.array?.count == 2_000_000)
    }

    /// A 3 MB safetensors header (24 bytes of memory per byte decoded) and a 4 MB tokenizer.json
    /// (20 per byte parsed) are refused under a 64 MiB budget before they are parsed.
    @Test func jsonIsCheckedAgainstTheMemoryBudget() throws {
        let header = Array(#"{"__metadata__": {"pad": ""}}"#.utf8) + [UInt8](repeating: 0x20, count: 3_000_000)
        var st = [UInt8](repeating: 0, count: 8) + header
        FuzzBytes.set(&st, 0, width: 8, UInt64(header.count))
        let dir = try Self.folder(["tokenizer.json": "{}" + String(repeating: " ", count: 4_000_000)])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(st).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        try MemoryBudget.$limit.withValue(64 << 20) {
            let s = try #require(throws: PruneError.self) { try SafetensorsFile(path: dir + "/model.safetensors") }
            #expect(s.code == .outOfRange && s.message.contains("decoding its 3000029-byte header needs 0.07 GiB"), "\(s.message)")
            let t = try #require(throws: PruneError.self) { try BPETokenizer(tokenizerJSONPath: dir + "/tokenizer.json") }
            #expect(t.code == .outOfRange && t.message.contains("(4000002 bytes) parsed needs 0.07 GiB"), "\(t.message)")
        }
        #expect(try SafetensorsFile(path: dir + "/model.safetensors").tensors.isEmpty)
    }

    /// Writes `files` (name to text) into a new directory and returns it; the caller removes it.
    static func folder(_ files: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "prune-fuzz-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        return dir
    }

    static let tinyVocab = #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}"#

    /// A pre_tokenizer that is not an object (JSONSerialization traps on writing such a value) and
    /// a vocabulary whose largest id is far beyond its size (it was allocated for) are errors.
    @Test(arguments: [
        (#"{"model": \#(tinyVocab), "pre_tokenizer": null}"#, "pre_tokenizer 'null' is not supported"),
        (#"{"model": \#(tinyVocab), "pre_tokenizer": "ByteLevel"}"#, "pre_tokenizer 'ByteLevel' is not supported"),
        (#"{"model": \#(tinyVocab), "pre_tokenizer": 3}"#, "pre_tokenizer '3' is not supported"),
        (#"{"model": \#(tinyVocab), "pre_tokenizer": []}"#, "pre_tokenizer '[]' is not supported"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 16777215}, "merges": []}}"#, "no token has id '1' although ids go up to 16777215"),
    ])
    func tokenizerJSONFoundByFuzzing(json: String, fragment: String) throws {
        let dir = try Self.folder(["tokenizer.json": json])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(throws: PruneError.self) { try BPETokenizer(tokenizerJSONPath: dir + "/tokenizer.json") }
        #expect(e.message.contains(fragment), "\(e.message)")
    }

    /// A config.json of a tiny LLaMA with `hidden_act` set to `act`.
    static func config(act: String) -> String {
        #"{"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 8, "hidden_act": "\#(act)"}"#
    }

    /// A value of 100,000 characters is shown cut to about 100 in the error that quotes it.
    @Test(arguments: ["config", "safetensors", "tokenizer"])
    func longValuesAreCutInMessages(file: String) throws {
        let long = String(repeating: "a", count: 100_000)
        let dir = try Self.folder(["config.json": Self.config(act: file == "config" ? long : "silu"),
                                   "tokenizer.json": #"{"model": {"type": "\#(long)"}}"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let header = Array(#"{"\#(long)": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#.utf8)
        var st = [UInt8](repeating: 0, count: 8) + header + [0, 0, 0, 0]
        FuzzBytes.set(&st, 0, width: 8, UInt64(header.count))
        try Data(st).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        let source = try ModelSource(path: dir)
        let e = try #require(throws: PruneError.self) {
            switch file {
            case "config": _ = try HFConfig(path: dir + "/config.json").modelConfig()
            case "tokenizer": _ = try source.tokenizer()
            default: _ = try source.load()
            }
        }
        #expect(e.message.utf8.count < 500 && e.message.contains("aaa…"), "\(e.message.prefix(300))")
    }

    /// A shard index naming a file with a control character (a NUL would cut the path short) or of
    /// 100,000 bytes is refused in a one-line message.
    @Test(arguments: [#"a\nb"#, #"a\u0000b"#, String(repeating: "a", count: 100_000)])
    func shardNamesMustBePlainFileNames(name: String) throws {
        let dir = try Self.folder(["config.json": Self.config(act: "silu"), "model.safetensors.index.json": #"{"weight_map": {"x": "\#(name)"}}"#])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = try #require(throws: PruneError.self) { try ModelSource(path: dir).load() }
        #expect(e.message.contains("must be a plain file name") && !e.message.contains("\n") && e.message.utf8.count < 500, "\(e.message.prefix(300))")
    }
}

/// The valid files the mutations start from, built once per run.
struct FuzzBases {
    /// Where the bases are written: `NAME.gguf` files and `NAME/` directories.
    let dir: String
    var gguf: [(name: String, bytes: [UInt8], layout: GGUFLayout)] = []
    var hf: [(name: String, files: [(name: String, bytes: [UInt8])])] = []

    /// 256 byte tokens, four merges (`Ġt`, `th`, `the`, `he`), `<|endoftext|>` (control, BOS/EOS) and
    /// `<tool_call>` (user-defined): 262 tokens.
    static func tokenizer(pre: String) throws -> BPETokenizer {
        let bytes = (0..<256).map { ByteUnicode.encode([UInt8($0)]) }
        let space = ByteUnicode.encode([0x20])
        let tokens = bytes + [space + "t", "th", "the", "he", "<|endoftext|>", "<tool_call>"]
        return try BPETokenizer(tokens: tokens, merges: ["\(space) t", "t h", "th e", "h e"],
                                tokenTypes: [Int](repeating: 1, count: 260) + [3, 4], preTokenizer: pre, bosTokenId: 260, eosTokenId: 260)
    }

    static func config(hidden: Int, headDim: Int, heads: [Int], kv: [Int], ffn: [Int], tied: Bool, qwen2: Bool = false) -> ModelConfig {
        ModelConfig(vocabSize: 262, hiddenSize: hidden, nLayers: heads.count, headDim: headDim, nHead: heads, nKVHead: kv, ffnDim: ffn,
                    ropeBase: qwen2 ? 1e6 : 10000, rmsEps: 1e-5, contextLength: 64, tiedEmbeddings: tied, bosTokenId: 260, eosTokenId: 260,
                    architecture: qwen2 ? "qwen2" : "llama", attentionBias: qwen2, ropeLayout: qwen2 ? .halves : .adjacentPairs)
    }

    init(dir: String) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let gpt2 = try Self.tokenizer(pre: "gpt2"), qwen = try Self.tokenizer(pre: "qwen2"), llama3 = try Self.tokenizer(pre: "llama-bpe")
        let small = Self.config(hidden: 16, headDim: 4, heads: [4, 4], kv: [2, 2], ffn: [24, 24], tied: true)
        let pruned = Self.config(hidden: 16, headDim: 4, heads: [4, 2], kv: [2, 1], ffn: [24, 28], tied: false)
        let ggufs: [(String, ModelConfig, GGUFOutputType, BPETokenizer)] = [
            ("llama-f32", small, .f32, gpt2),
            ("deci-f16", pruned, .f16, llama3),
            ("qwen2-q8_0", Self.config(hidden: 64, headDim: 16, heads: [4], kv: [2], ffn: [64], tied: false, qwen2: true), .q8_0, qwen),
            ("llama-q4_k_m", Self.config(hidden: 256, headDim: 64, heads: [4], kv: [1], ffn: [256], tied: false), .mix(.q4_K_M), gpt2),
            ("llama-q5_1", Self.config(hidden: 32, headDim: 8, heads: [4, 4], kv: [2, 2], ffn: [64, 64], tied: true), .mix(.q5_1), gpt2),
        ]
        for (i, (name, c, type, tok)) in ggufs.enumerated() {
            let path = "\(dir)/\(name).gguf"
            try Transformer(randomWith: c, seed: UInt64(40 + i), scale: 0.3).writeGGUF(to: path, type: type, tokenizer: tok, name: name)
            add(gguf: name, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        let allTypes = try Self.allTypes(small, gpt2)
        try Data(allTypes).write(to: URL(fileURLWithPath: "\(dir)/all-types.gguf"))
        add(gguf: "all-types", allTypes)
        let hfs: [(String, ModelConfig, SafetensorsDType, BPETokenizer)] = [
            ("llama-f32", small, .f32, gpt2),
            ("qwen2-bf16", Self.config(hidden: 16, headDim: 4, heads: [4, 4], kv: [2, 2], ffn: [24, 24], tied: false, qwen2: true), .bf16, qwen),
            ("pruned-f16", pruned, .f16, llama3),
            ("llama-f32-sharded", small, .f32, gpt2),
        ]
        for (i, (name, c, dtype, tok)) in hfs.enumerated() {
            let folder = "\(dir)/\(name)"
            try Transformer(randomWith: c, seed: UInt64(50 + i), scale: 0.3).saveSafetensors(directory: folder, dtype: dtype, tokenizer: tok)
            if name == "llama-f32-sharded" { try Self.shard(folder) }
            let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
            hf.append((name, try names.map { ($0, Array(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\($0)")))) }))
        }
    }

    /// A GGUF of `config` whose metadata holds every value type (nested and empty arrays, f32
    /// scores, u64 and i64, a bool), aligned to 64 bytes, with BF16 matrices.
    static func allTypes(_ config: ModelConfig, _ tokenizer: BPETokenizer) throws -> [UInt8] {
        let model = try Transformer(randomWith: config, seed: 49, scale: 0.3)
        var w = GGUFWriter()
        for (k, v) in try model.ggufMetadata(type: .f32, source: nil, tokenizer: tokenizer, name: "all-types") { w.set(k, v) }
        w.set("tokenizer.ggml.scores", .array((0..<config.vocabSize).map { .float32(-Float($0)) }))
        let extra: [(String, GGUFValue)] = [
            ("fuzz.u8", .uint8(7)), ("fuzz.i8", .int8(-7)), ("fuzz.u16", .uint16(700)), ("fuzz.i16", .int16(-700)),
            ("fuzz.i32", .int32(-70_000)), ("fuzz.u64", .uint64(1 << 40)), ("fuzz.i64", .int64(-(1 << 40))), ("fuzz.f64", .float64(0.5)),
            ("fuzz.bool", .bool(true)), ("fuzz.nested", .array([.array([.uint8(1), .uint8(2)]), .array([.uint8(3)])])),
            ("fuzz.empty", .array([])), ("fuzz.strings", .array([.string("a"), .string("")])),
        ]
        for (k, v) in extra { w.set(k, v) }
        for (name, shape) in TensorNames.layout(for: config) {
            try w.addTensor(name: name, shape: shape, data: Array(model.params.view(name)), type: shape.count == 2 ? .bf16 : .f32)
        }
        return Array(try w.encoded(alignment: 64))
    }

    /// Splits `folder`'s model.safetensors into two shards listed in model.safetensors.index.json.
    static func shard(_ folder: String) throws {
        let whole = try SafetensorsFile(path: folder + "/model.safetensors")
        var shards = [SafetensorsWriter(), SafetensorsWriter()]
        var map: [String: String] = [:]
        for (i, t) in whole.tensors.enumerated() {
            shards[i % 2].add(name: t.name, shape: t.shape, values: try whole.floats(t.name), dtype: .f32)
            map[t.name] = "model-0000\(i % 2 + 1)-of-00002.safetensors"
        }
        for (i, w) in shards.enumerated() { try w.write(to: folder + "/model-0000\(i + 1)-of-00002.safetensors") }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map], options: [.sortedKeys])
        try index.write(to: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))
        try FileManager.default.removeItem(atPath: folder + "/model.safetensors")
    }

    private mutating func add(gguf name: String, _ bytes: [UInt8]) {
        gguf.append((name, bytes, GGUFLayout(bytes)))
    }
}
