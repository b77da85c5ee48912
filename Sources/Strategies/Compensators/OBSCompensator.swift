import Foundation
import PruneFramework

/// Weight compensation by Optimal Brain Surgeon for removed input columns (SlimGPT, Ling et al.
/// 2024, arXiv 2412.18110; ZipLM, Kurtić et al. 2023): after the plan removes KV groups or MLP
/// channels, the kept columns of each layer's `attn_output` and `ffn_down` are updated from the
/// calibration Hessian H = XᵀX of their inputs so the layer's output changes least
/// (`OBSCompensation`), usable after any criterion.
///
/// The layers are processed in order, as SlimGPT and SparseGPT do: layer l's inputs come from the
/// layers before it as already compensated and cut, its Hessians are summed over the calibration
/// tokens (one layer's at a time), its kept columns are updated and its removed columns zeroed,
/// and its outputs feed layer l + 1. The surgery then removes the plan's units. Only these two
/// matrices change; hidden channels and blocks are cut without compensation.
public struct OBSCompensator: Compensator {
    public static let name = "obs"
    public static let summary = "OBS update of the kept attn_output/ffn_down columns from the calibration Hessian XᵀX, layer by layer (SlimGPT, ZipLM)"
    public static let keys = [
        PluginKey("damp", "number", default: "0.1", "λ = damp · mean diagonal of H added to H's diagonal; > 0 (larger for fewer calibration tokens)"),
    ]

    /// 0.1 rather than GPTQ's 0.01: on SmolLM2 (wanda 20%, 40 WikiText-2 windows) 0.01 needs
    /// 16K calibration tokens (PPL 143.4 against 202.4 uncompensated) and hurts with 4K (worse than
    /// not compensating), where 0.1 gives 158.9 against 192.2 and still 143.6 with 16K.
    public var damp = 0.1

    public init(damp: Double = 0.1) { self.damp = damp }

    /// Each rank runs its share of the calibration sequences; the Hessians are added over the ranks.
    public var isDataParallel: Bool { true }

    enum CodingKeys: String, CodingKey { case damp }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        damp = try c.number(.damp, default: 0.1, in: -1e9...1e9)
        guard damp > 0 else {
            throw PruneError(.outOfRange, "recipe: \(jsonPath(c.codingPath, "damp")) = '\(damp)' must be > 0: it keeps the Hessian positive definite (default 0.1)")
        }
    }

    public func compensate(_ model: Transformer, plan: PruningPlan, groups: [PruneGroup], context: CompensationContext) throws -> String {
        let removed = plan.removedOutputProjectionColumns(groups)
        guard !removed.isEmpty else { return "OBS: the plan removes no attn_output or ffn_down column; nothing to compensate" }
        let targets = Dictionary(grouping: removed.keys, by: { TensorNames.layer(of: $0) ?? -1 })
        let observer = HessianSums(sites: targets.mapValues { Set($0.compactMap(Self.inputSite)) })
        let L = model.config.nLayers, comm = context.communicator
        // With several ranks, each runs its share of the sequences; every layer's Hessians are added
        // over the ranks before the update, which every rank makes alike.
        let mine = Array(context.calibration[comm.share(of: context.calibration.count)])
        try model.layerByLayer(sequences: mine, observer: observer) { l in
            defer { context.progress(l + 1, L) }
            for tensor in (targets[l] ?? []).sorted() {  // one order on every rank (a Dictionary's is per process)
                guard let site = Self.inputSite(tensor), let cols = model.params.entry(tensor)?.shape.last else { continue }
                var h = observer.take(layer: l, site: site) ?? InputHessian(cols: cols)
                try h.sum(over: comm)
                guard h.count > 0 else { continue }
                try update(tensor, in: model, removing: removed[tensor]!, hessian: h)
            }
        }
        let layers = targets.keys.filter { $0 >= 0 }.count
        return "OBS: updated the kept columns of \(removed.count) tensors in \(layers) layers from \(context.calibration.count) calibration sequences (damp \(damp))"
    }

    /// Writes the OBS update of `tensor`'s kept columns and zeroes its removed ones.
    func update(_ tensor: String, in model: Transformer, removing cut: Set<Int>, hessian: InputHessian) throws {
        guard let e = model.params.entry(tensor), e.shape.count == 2 else { return }
        let (n, k) = (e.shape[0], e.shape[1])
        let keep = (0..<k).filter { !cut.contains($0) }
        let w = model.params.pointer(tensor)
        let kept = try OBSCompensation.compensate(weight: w, rows: n, cols: k, hessian: hessian, keep: keep, damp: damp)
        for r in 0..<n {
            let row = w + r * k
            row.update(repeating: 0, count: k)
            for (i, c) in keep.enumerated() { row[c] = kept[r * keep.count + i] }
        }
        model.params.markModified([tensor])
    }

    /// Where the forward shows a compensated tensor's input.
    static func inputSite(_ tensor: String) -> ActivationSite? {
        switch TensorNames.parse(tensor)?.role {
        case .attnOutput?: return .attnOutputInput
        case .ffnDown?: return .mlpIntermediate
        default: return nil
        }
    }
}

/// Σ xᵀx of the inputs at the wanted sites of each layer, summed while the layer runs and taken
/// when it is compensated, so one layer's Hessians are held at a time.
final class HessianSums: ForwardObserver {
    let sites: [Int: Set<ActivationSite>]
    private var sums: [String: InputHessian] = [:]

    init(sites: [Int: Set<ActivationSite>]) { self.sites = sites }

    func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        guard sites[layer]?.contains(site) == true, let x = activations.baseAddress else { return }
        sums["\(layer).\(site.rawValue)", default: InputHessian(cols: cols)].add(x, rows: rows)
    }

    func take(layer: Int, site: ActivationSite) -> InputHessian? {
        sums.removeValue(forKey: "\(layer).\(site.rawValue)")
    }
}
