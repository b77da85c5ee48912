import Foundation
import PruneFramework

extension PruneRun {
    /// The criterion's compensation key when it repairs its own cut in this run
    /// (`CompensatingCriterion.compensates`), nil otherwise.
    var criterionCompensationKey: String? {
        guard let c = recipe.criterion as? any CompensatingCriterion, c.compensates else { return nil }
        return type(of: c).compensationKey
    }

    /// Runs the criterion's own repair (FLAP's bias compensation) after the plan and before the
    /// surgery; returns the model to cut.
    func compensate(_ model: Transformer, with c: any CompensatingCriterion, plan: PruningPlan, groups: [PruneGroup],
                    context: ScoringContext, suffix: String) throws -> Transformer {
        let name = type(of: c).name
        let (repaired, line) = try timed("compensate with criterion '\(name)'\(suffix)") {
            try c.compensate(model, plan: plan, groups: groups, context: context)
        }
        log("  " + line)
        return repaired
    }

    /// Checks before any work that a criterion's own compensation fits the recipe: it is not run
    /// beside a `compensator` stage (both would repair the same cut), and a model it gives output
    /// biases is not written as safetensors (`Transformer.saveSafetensors` cannot hold them).
    func checkCompensation() throws {
        guard let key = criterionCompensationKey else { return }
        let name = type(of: recipe.criterion).name
        if let c = recipe.compensator {
            throw PruneError(.invalidArgument, "recipe: criterion.\(key) = true ('\(name)' compensates the channels it removes) and compensator.type = '\(type(of: c).name)' would both repair the same cut; set criterion.\(key) to false or remove the compensator")
        }
        if recipe.output.formats.contains("safetensors") {
            throw PruneError(.unsupported, "recipe: output.formats includes safetensors, but criterion.\(key) = true ('\(name)''s bias compensation) gives the model attn_output and ffn_down biases, which Hugging Face's LlamaForCausalLM holds only with q/k/v and gate/up biases and Qwen2ForCausalLM not at all; write gguf (llama.cpp's llama and deci loaders take them) or set criterion.\(key) to false")
        }
    }

    /// Checks before any work that an input model with output biases is not to be written as safetensors.
    func checkOutputBiasFormats(_ config: ModelConfig) throws {
        guard config.outputBias, recipe.output.formats.contains("safetensors") else { return }
        throw PruneError(.unsupported, "recipe: output.formats includes safetensors, but model '\(recipe.model)' has attn_output and ffn_down biases, which Hugging Face's LlamaForCausalLM holds only with q/k/v and gate/up biases and Qwen2ForCausalLM not at all; write gguf")
    }
}
