import Criteria
import PruneFramework
import Strategies

extension PluginSet {
    /// A plugin set with every built-in plugin registered. Users add their own with `register`.
    public static func builtins() -> PluginSet {
        let s = PluginSet()
        s.groupings.register(DecoderGrouping.self) { $0 }
        s.criteria.register(MagnitudeCriterion.self) { $0 }
        s.criteria.register(RandomCriterion.self) { $0 }
        s.criteria.register(WandaCriterion.self) { $0 }
        s.criteria.register(TaylorCriterion.self) { $0 }
        s.criteria.register(MutualInformationCriterion.self) { $0 }
        s.criteria.register(PolicyGradientCriterion.self) { $0 }
        s.criteria.register(BlockInfluenceCriterion.self) { $0 }
        s.criteria.register(FLAPCriterion.self) { $0 }
        s.criteria.register(SAAPFusionCriterion.self) { $0 }
        s.schedulers.register(UniformScheduler.self) { $0 }
        s.schedulers.register(GlobalScheduler.self) { $0 }
        s.schedulers.register(IterativeScheduler.self) { $0 }
        s.schedulers.register(UnstructuredScheduler.self) { $0 }
        s.schedulers.register(NMScheduler.self) { $0 }
        s.schedulers.register(SAAPScheduler.self) { $0 }
        s.fineTuners.register(LoRAFineTuner.self) { $0 }
        s.fineTuners.register(SAAPGroupFineTuner.self) { $0 }
        s.fineTuners.register(SPPFineTuner.self) { $0 }
        s.compensators.register(OBSCompensator.self) { $0 }
        return s
    }
}
