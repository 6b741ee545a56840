"""What a training run is: every knob in one typed, serialisable place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "nano"               # a project architecture (engine.model.ARCHITECTURES) or sam2 config
    steps: int = 20_000              # optimiser steps in the whole run (the LR schedule spans them)
    clips_per_step: int = 2          # videos per batch
    frames_per_clip: int = 8         # frames per video; memory is active from frame 1 on
    max_objects: int = 3             # tracked objects per clip: 1..max_objects
    # Clips are generated frames_per_clip * frame_stride long and every frame_stride-th frame
    # kept: the same memory slots and pointer window, faster motion and more events per CPU s.
    frame_stride: int = 1
    data: str = "heldout"            # synthetic options preset (train.data.DATA_PRESETS)
    # Curriculum: the first image_steps steps are SAM's image task (one frame per clip, click
    # and correction clicks, no memory) on image_clips_per_step clips: many more distinct
    # objects per second of CPU while the encoder learns to see objects at all.
    image_steps: int = 0
    image_clips_per_step: int = 8
    seed: int = 0                    # data order and SAM2Train's prompt sampling
    # Fine-tuning: a fresh run starts from these weights (an engine weights file such as the
    # shipped vos_service/weights/nano.pt) instead of a random init; "" = from scratch.
    init_from: str = ""
    lr: float = 1e-3                 # peak AdamW learning rate (from scratch, not fine-tuning)
    min_lr_ratio: float = 0.05       # cosine decays to lr * min_lr_ratio at `steps`
    warmup_steps: int = 300
    weight_decay: float = 0.05       # on weight matrices only, not norms and biases
    grad_clip: float = 1.0
    # Prompt simulation (SAM2Train). The service's usual start is one click on frame 0,
    # so points dominate; boxes and full masks keep the other prompt kinds working.
    prob_point_input: float = 0.8    # else the GT mask is the first-frame prompt
    prob_box_input: float = 0.2      # of point inputs, a box instead of a click
    frames_to_correct: int = 2       # frame 0 + up to one more frame get correction clicks
    correction_points: int = 7       # iterative correction clicks per corrected frame
    # Losses (weights of the official SAM 2.1 training configs).
    loss_mask: float = 20.0
    loss_dice: float = 1.0
    loss_iou: float = 1.0
    loss_class: float = 1.0
    # Official: 0.25, tuned for fine-tuning a model that already segments. From scratch it
    # weighs a missed object pixel 3x less than a false one, and the nano model collapsed
    # to empty masks (README: model card); -1 = no class weighting.
    focal_alpha: float = -1.0
    # Bookkeeping
    log_every: int = 20
    checkpoint_every: int = 100
    # Monitor: every val_every steps, one-click J&F on val_clips clips of the validation seed
    # range (synth.VAL_SEED_START..), never the held-out test set; 0 = off.
    val_every: int = 0
    val_clips: int = 4
    threads: int = 0                 # torch intra-op threads; 0 = torch's default

    def __post_init__(self) -> None:
        # sam2's SAM2Train fails deep inside a step (UnboundLocalError) with 0 correction points.
        if self.correction_points < 1:
            raise ValueError(f"correction_points must be >= 1, got {self.correction_points}")
        from vos_service.train.data import DATA_PRESETS

        if self.data not in DATA_PRESETS:
            raise ValueError(f"data must be one of {sorted(DATA_PRESETS)}, got {self.data!r}")
        for name in ("steps", "clips_per_step", "frames_per_clip", "max_objects", "image_clips_per_step",
                     "frame_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_steps < 0 or self.warmup_steps < 0 or self.lr <= 0 or self.val_every < 0:
            raise ValueError("image_steps, warmup_steps and val_every must be >= 0 and lr > 0")

    def batch_shape(self, step: int) -> tuple[int, int]:
        """(clips, frames per clip) of step ``step``."""
        if step < self.image_steps:
            return self.image_clips_per_step, 1
        return self.clips_per_step, self.frames_per_clip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**d)
