/// Groupings, schedulers and fine-tuners. Filled by the pruning-core issue.
