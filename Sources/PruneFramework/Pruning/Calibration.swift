import Foundation

/// Calibration sequences and the statistics pass over them.
public enum Calibration {
    /// Documents of a calibration source: `c4` (the data folder's c4/), a .jsonl file (field "text", or
    /// "prefix" + "gold_completion" as in the C4 file), or an evaluation text (`wikitext2`, `ptb`, a path).
    public static func documents(_ nameOrPath: String, dataDir: String? = nil) throws -> [String] {
        let path = nameOrPath == "c4" ? try Datasets.locate("c4", dataDir: dataDir) ?? nameOrPath : nameOrPath
        guard path.hasSuffix(".jsonl") else { return [try Datasets.resolve(nameOrPath, dataDir: dataDir).text] }
        let data: Data
        do { data = try RegularFile.read(path, what: "calibration file") } catch let e as PruneError {
            throw PruneError(e.code, "\(e.message); pass a .jsonl or text file, or 'c4' with the data directory present")
        }
        var docs: [String] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.isEmpty {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw PruneError(.badFormat, "calibration file '\(path)': line \(i + 1) is not a JSON object")
            }
            if let t = obj["text"] as? String {
                docs.append(t)
            } else if let p = obj["prefix"] as? String {
                docs.append(p + ((obj["gold_completion"] as? String) ?? ""))
            } else {
                throw PruneError(.badFormat, "calibration file '\(path)': line \(i + 1) has no 'text' (or 'prefix') field")
            }
        }
        guard !docs.isEmpty else { throw PruneError(.badFormat, "calibration file '\(path)' holds no documents") }
        return docs
    }

    /// `samples` sequences of `seqLen` tokens: documents shuffled by `seed`, tokenized, joined with
    /// EOS between documents, cut into consecutive sequences (a single text is cut at seeded offsets).
    public static func sequences(documents: [String], tokenizer: BPETokenizer, samples: Int, seqLen: Int, seed: Int) throws -> [[Int32]] {
        var rng = SplitMix64(seed: UInt64(seed))
        var out: [[Int32]] = []
        if documents.count == 1 {
            let ids = tokenizer.encode(documents[0])
            guard ids.count >= seqLen else {
                throw PruneError(.outOfRange, "calibration text has \(ids.count) tokens, fewer than seqLen \(seqLen)")
            }
            for _ in 0..<samples {
                let start = Int(rng.next() % UInt64(ids.count - seqLen + 1))
                out.append(Array(ids[start..<(start + seqLen)]))
            }
            return out
        }
        let order = documents.indices.shuffled(using: &rng)
        let eos = tokenizer.eosTokenId.map { Int32($0) }
        var stream: [Int32] = []
        for i in order where stream.count < samples * seqLen {
            stream += tokenizer.encode(documents[i])
            if let eos { stream.append(eos) }
        }
        guard stream.count >= samples * seqLen else {
            throw PruneError(.outOfRange, "calibration documents hold \(stream.count) tokens, fewer than samples × seqLen = \(samples * seqLen)")
        }
        for s in 0..<samples { out.append(Array(stream[(s * seqLen)..<((s + 1) * seqLen)])) }
        return out
    }

    /// Token rows per layer sampled for a criterion that declares `.activationSamples` and does not
    /// say how many it wants (`SamplingCriterion`).
    public static let defaultSampleRows = 256

    /// Token rows per layer the runner should sample for a criterion: 0 unless it declares `.activationSamples`.
    public static func sampleRows(for criterion: any Criterion) -> Int {
        guard criterion.inputs.contains(.activationSamples) else { return 0 }
        return (criterion as? any SamplingCriterion)?.sampleRows ?? defaultSampleRows
    }

    /// Runs the model over the sequences and returns the streamed input statistics of every linear layer,
    /// plus, when `sampleRows` > 0, a seeded uniform sample of that many token rows per layer of the MLP
    /// intermediate activations and the head outputs (`ActivationStatistics.sampledSites`).
    /// `progress` gets (blocks done, total) over this rank's batches: batches × layers.
    ///
    /// With several ranks, each runs its share of the sequences and the sums are added over the ranks
    /// (`ActivationStatistics.sum(over:)`); a reservoir sample depends on the order of all rows, so
    /// with `sampleRows` > 0 every rank runs every batch.
    public static func statistics(model: Transformer, sequences: [[Int32]], sampleRows: Int = 0, seed: UInt64 = 0,
                                  communicator: any Communicator = SingleProcess(),
                                  progress: ((Int, Int) -> Void)? = nil) throws -> ActivationStatistics {
        let stats = sampleRows > 0 ? ActivationStatistics(sampleRows: sampleRows, seed: seed) : ActivationStatistics()
        guard let T = sequences.first?.count else { return stats }
        let batch = max(1, 1024 / T)
        let shared = sharesStatistics(sampleRows: sampleRows, communicator: communicator)
        let rows = shared ? communicator.share(of: sequences.count) : 0..<sequences.count
        let mine = stride(from: rows.lowerBound, to: rows.upperBound, by: batch).map { $0..<min($0 + batch, rows.upperBound) }
        let observer = BlockProgress(stats, total: mine.count * model.config.nLayers, progress: progress)
        for r in mine {
            _ = try model.hiddenStates(tokens: Array(sequences[r].joined()), batch: r.count, seqLen: T, observer: observer)
        }
        if shared { try stats.sum(over: communicator) }
        return stats
    }

    /// Whether `statistics` shares its batches out over the ranks of `communicator`.
    public static func sharesStatistics(sampleRows: Int, communicator: any Communicator) -> Bool {
        sampleRows == 0 && communicator.isDistributed
    }
}

/// Forwards what a forward shows to `inner` and counts blocks (their outputs) for a progress report.
final class BlockProgress: ForwardObserver {
    let inner: ForwardObserver
    let total: Int
    let progress: ((Int, Int) -> Void)?
    private var done = 0

    init(_ inner: ForwardObserver, total: Int, progress: ((Int, Int) -> Void)?) {
        self.inner = inner
        self.total = total
        self.progress = progress
    }

    func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        inner.observe(layer: layer, site: site, activations: activations, rows: rows, cols: cols)
        if site == .blockOutput {
            done += 1
            progress?(done, total)
        }
    }
}

/// A criterion that reads sampled activation rows (declares `.activationSamples`) and says how many
/// token rows per layer it needs; the runner passes `Calibration.sampleRows(for:)` to calibration.
public protocol SamplingCriterion: Criterion {
    var sampleRows: Int { get }
}
