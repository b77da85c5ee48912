import Foundation
import PruneFramework

/// The `loss` key of the adapter fine-tuners (`lora`, `saap-group`, `spp`): `{"type": "ce"}`, next-token
/// cross-entropy (the default), or `{"type": "kl", "temperature": τ, "alpha": α}`, which mixes it with
/// the KL divergence to the dense model's logits on the same batches (`Distillation`).
public struct TrainingLoss: Codable, Sendable, Equatable, RecipeObject {
    public static let jsonShape = "an object such as {\"type\": \"kl\", \"temperature\": 1, \"alpha\": 0.5}"
    public static let types = ["ce", "kl"]
    public static let key = PluginKey("loss", "object", default: "{\"type\":\"ce\"}",
                                      "ce: next-token cross-entropy; {\"type\": \"kl\", \"temperature\": 1, \"alpha\": 0.5}: (1−α)·CE + α·τ²·KL to the dense model's logits (the run reads the dense model again from its file)")

    public var type = "ce"
    public var temperature = 1.0
    public var alpha = 0.5

    public init() {}

    /// Distillation from the dense model with temperature `temperature` and weight `alpha`.
    public static func kl(temperature: Double = 1, alpha: Double = 0.5) -> TrainingLoss {
        var l = TrainingLoss()
        l.type = "kl"
        l.temperature = temperature
        l.alpha = alpha
        return l
    }

    /// The distillation it asks for; nil for plain cross-entropy.
    public var distillation: Distillation? { type == "kl" ? Distillation(temperature: temperature, alpha: alpha) : nil }

    enum CodingKeys: String, CodingKey { case type, temperature, alpha }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard c.contains(.type) else {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "type")) is missing; give one of: \(Self.types.joined(separator: ", "))")
        }
        type = try c.choice(.type, default: "ce", allowed: Self.types)
        if type == "ce" {
            try decoder.checkKeys([], context: "loss 'ce'")
            return
        }
        try decoder.checkKeys(["temperature", "alpha"], context: "loss 'kl'")
        temperature = try c.number(.temperature, default: 1, in: 1e-3...1e3)
        alpha = try c.number(.alpha, default: 0.5, in: 0...1)
    }

    /// `{"type": "ce"}`, or the kl object with its settings.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        if type == "kl" {
            try c.encode(temperature, forKey: .temperature)
            try c.encode(alpha, forKey: .alpha)
        }
    }
}
