"""Build a trainable SAM2Train with exactly the parameters of the engine's SAM2Base.

The same hydra config and overrides as ``engine.model.build_model``, with the
class swapped for ``training.model.sam2.SAM2Train``: its state dict is the
SAM2Base state dict, so exported weights load into the engine unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from vos_service.engine.model import ModelSpec, compose_sam2_config
from vos_service.train.config import TrainConfig

if TYPE_CHECKING:  # the sam2 training package ships no type information: reads as Any
    from training.model.sam2 import SAM2Train


def train_overrides(cfg: TrainConfig) -> list[str]:
    return [
        "++model._target_=training.model.sam2.SAM2Train",
        f"++model.prob_to_use_pt_input_for_train={cfg.prob_point_input}",
        f"++model.prob_to_use_box_input_for_train={cfg.prob_box_input}",
        f"++model.num_frames_to_correct_for_train={cfg.frames_to_correct}",
        "++model.rand_frames_to_correct_for_train=true",
        "++model.add_all_frames_to_correct_as_cond=true",  # corrected frames become prompted memories
        "++model.num_init_cond_frames_for_train=1",  # the service's start: prompts on one frame
        f"++model.num_correction_pt_per_frame={cfg.correction_points}",
    ]


def build_train_model(cfg: TrainConfig, init_seed: int) -> SAM2Train:
    from hydra.utils import instantiate

    spec = ModelSpec(cfg.arch, random_init_seed=init_seed)
    conf = compose_sam2_config(spec.base_config(), spec.hydra_overrides() + train_overrides(cfg))
    torch.manual_seed(init_seed)
    return instantiate(conf.model, _recursive_=True)


def build_loss(cfg: TrainConfig) -> torch.nn.Module:
    from training.loss_fns import MultiStepMultiMasksAndIous

    return MultiStepMultiMasksAndIous(
        weight_dict={"loss_mask": cfg.loss_mask, "loss_dice": cfg.loss_dice, "loss_iou": cfg.loss_iou,
                     "loss_class": cfg.loss_class},
        focal_alpha=cfg.focal_alpha, supervise_all_iou=True, iou_use_l1_loss=True, pred_obj_scores=True,
        focal_gamma_obj_score=0.0, focal_alpha_obj_score=-1.0)
