"""Training SAM 2 models on synthetic video (the shipped offline ``nano`` model).

The recipe is SAM 2's own: the ``training`` package installed with sam2 provides
``SAM2Train`` (simulated clicks, boxes and mask prompts on the first frame,
iterative correction clicks sampled from the error region, multi-frame clips with
the memory active) and ``MultiStepMultiMasksAndIous`` (focal + dice + IoU +
object-score losses). This package feeds it seeded synthetic clips
(``vos_service.synth``), runs the optimiser on the CPU, checkpoints so a run
resumes where it stopped, and exports the weights the engine loads.
"""

from vos_service.train.config import TrainConfig
from vos_service.train.export import export_weights
from vos_service.train.trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "export_weights"]
