"""DAVIS-style evaluation: region similarity J, boundary F, and their J&F summary.

``evaluate_sequence`` scores in-memory id maps, ``evaluate_dirs`` DAVIS-layout PNG
folders, ``summarize`` aggregates sequence scores into a ``Report`` (means over all
objects, as the DAVIS 2017 toolkit does). The CLI is ``vos-service eval``.
"""

from vos_service.eval.davis_dirs import evaluate_dirs, read_mask
from vos_service.eval.metrics import DEFAULT_BOUND_TH, boundary_f, boundary_map, region_j, statistics
from vos_service.eval.scores import EvalError, ObjectScore, Report, SequenceScore, evaluate_sequence, summarize

__all__ = [
    "DEFAULT_BOUND_TH",
    "EvalError",
    "ObjectScore",
    "Report",
    "SequenceScore",
    "boundary_f",
    "boundary_map",
    "evaluate_dirs",
    "evaluate_sequence",
    "read_mask",
    "region_j",
    "statistics",
    "summarize",
]
