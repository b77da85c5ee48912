/// Pruning criteria: one file per criterion (magnitude, random, Taylor, Wanda, ...). Filled by the pruning-core issue.
