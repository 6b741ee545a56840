"""How sure a J&F is: a percentile bootstrap over clips (clips are the unit that varies).

Objects within one clip share its scene, so resampling objects would understate the
spread; each replicate draws as many clips as were scored, with replacement, and
recomputes the statistic exactly as the report does (the mean over all objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vos_service.eval.scores import Report, summarize

STATISTICS = {"J&F": lambda r: r.jf_mean, "J": lambda r: r.j_mean, "J-Decay": lambda r: r.j_decay}


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float = 0.95
    replicates: int = 2000

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def bootstrap(report: Report, statistic: str = "J&F", replicates: int = 2000, level: float = 0.95,
              seed: int = 0) -> Interval:
    """Percentile interval of ``statistic`` over clips resampled with replacement."""
    seqs = report.sequences
    if len(seqs) < 2:
        raise ValueError("a bootstrap needs at least 2 clips")
    stat = STATISTICS[statistic]
    rng = np.random.default_rng(seed)
    values = [stat(summarize([seqs[i] for i in rng.integers(len(seqs), size=len(seqs))])) for _ in range(replicates)]
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), level, replicates)
