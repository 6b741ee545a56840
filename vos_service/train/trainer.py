"""The training loop: resumable, logged, CPU-friendly.

A run lives in one directory: ``last.pt`` (model, optimiser, step, elapsed time,
config; replaced atomically every ``checkpoint_every`` steps and at the end),
``best.pt`` (the weights of the best validation J&F so far, when the run validates) and
``log.jsonl`` (one line of mean losses per ``log_every`` steps). Starting a run in
a directory that holds ``last.pt`` resumes it: same config, same data order
(clip seeds are a function of the step), optimiser state restored.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from vos_service.train.config import TrainConfig
from vos_service.train.data import SynthStream
from vos_service.train.model import build_loss, build_train_model

CHECKPOINT = "last.pt"
BEST = "best.pt"  # validation peaks between checkpoints would otherwise be overwritten by later steps
LOG = "log.jsonl"
LOSS_KEYS = ("loss_mask", "loss_dice", "loss_iou", "loss_class", "core_loss")


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_ratio at cfg.steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    def __init__(self, run_dir: Path, cfg: TrainConfig | None = None):
        """Resume ``run_dir`` if it holds a checkpoint (cfg may then only raise ``steps``), else start ``cfg``."""
        self.run_dir = Path(run_dir)
        ck_path = self.run_dir / CHECKPOINT
        ck = torch.load(ck_path, map_location="cpu", weights_only=True) if ck_path.is_file() else None
        if ck is not None:
            saved = TrainConfig.from_dict(ck["config"])
            if cfg is not None and cfg.steps != saved.steps:
                saved = TrainConfig.from_dict({**saved.to_dict(), "steps": cfg.steps})  # extend (or cut) a run
            cfg = saved
        elif cfg is None:
            raise FileNotFoundError(f"no checkpoint to resume in {self.run_dir} and no config to start")
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.model = build_train_model(cfg, init_seed=cfg.seed)
        self.loss_fn = build_loss(cfg)
        self.opt = torch.optim.AdamW(_param_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
        self.step, self.elapsed_s = 0, 0.0
        if ck is None and cfg.init_from:
            from vos_service.engine.model import load_checkpoint_into
            from vos_service.train.calibrate import BIAS_KEY, trained_shift

            load_checkpoint_into(self.model, Path(cfg.init_from))  # strict: same architecture or an error
            with torch.no_grad():  # a shipped model's occlusion threshold undone: train the head as trained
                self.model.get_parameter(BIAS_KEY).add_(trained_shift(Path(cfg.init_from)))
        if ck is not None:
            self.model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["optimizer"])
            self.step, self.elapsed_s = int(ck["step"]), float(ck["elapsed_s"])

    def save(self, name: str = CHECKPOINT, **extra) -> Path:
        """``last.pt`` (resumable: with the optimiser) or another checkpoint of the weights."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / name
        tmp = path.with_suffix(".tmp")
        state = {"model": self.model.state_dict(), "step": self.step, "elapsed_s": self.elapsed_s,
                 "config": self.cfg.to_dict(), **extra}
        if name == CHECKPOINT:
            state["optimizer"] = self.opt.state_dict()
        torch.save(state, tmp)
        os.replace(tmp, path)  # a crash mid-save leaves the previous checkpoint intact
        return path

    def _forget_log_after(self, step: int) -> None:
        """Drop log lines past ``step``: a run stopped between checkpoints logged steps that
        resuming from last.pt trains again, and the log would hold them twice."""
        path = self.run_dir / LOG
        if not path.is_file():
            return
        lines = path.read_text().splitlines(keepends=True)
        # A kill mid-write leaves a last line without its newline: half a record, dropped.
        whole = [line for line in lines if line.endswith("\n")]
        kept = [line for line in whole if json.loads(line)["step"] <= step]
        if len(kept) < len(lines):
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(kept))
            os.replace(tmp, path)

    def best_val(self) -> float | None:
        """Validation J&F of ``best.pt``, None when there is none yet."""
        path = self.run_dir / BEST
        return float(torch.load(path, map_location="cpu", weights_only=True)["val_J&F"]) if path.is_file() else None

    def _validate_and_keep_best(self, log) -> None:
        val = self.validate()
        log.write(json.dumps({"step": self.step, **val}) + "\n")
        log.flush()
        best = self.best_val()
        if best is None or val["val_J&F"] > best:
            self.save(BEST, **{"val_J&F": val["val_J&F"]})

    def validate(self) -> dict[str, float]:
        """One-click J&F of the current weights on the validation seeds (never the test set)."""
        from vos_service.engine.model import ModelSpec, build_model
        from vos_service.eval.tracking import HeldOutProtocol, score_clips, track_one_click
        from vos_service.synth import VAL_SEED_START

        path = self.run_dir / "val.pt"
        torch.save({"model": self.model.state_dict()}, path)
        model = build_model(ModelSpec(self.cfg.arch, checkpoint=path))
        clips = HeldOutProtocol(clips=self.cfg.val_clips, first_seed=VAL_SEED_START).clip_list()
        report = score_clips(clips, lambda c: track_one_click(model, c))
        path.unlink()
        self.model.train()
        return {"val_J&F": report.jf_mean, "val_J": report.j_mean, "val_J-Decay": report.j_decay}

    def train_step(self, batch) -> dict[str, float]:
        # Prompt simulation (clicks, boxes, which frames get corrections) draws from numpy
        # and torch: seeded per step, so a resumed run repeats an uninterrupted one exactly.
        self.model.rng = np.random.default_rng([self.cfg.seed, self.step])
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step)
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.cfg, self.step)
        outs = self.model(batch)
        losses = self.loss_fn(outs, batch.masks)
        self.opt.zero_grad(set_to_none=True)
        losses["core_loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.step += 1
        return {k: float(losses[k].detach()) for k in LOSS_KEYS}

    def run(self, until_step: int | None = None, progress: bool = True, workers: int = 1) -> None:
        """Train to ``until_step`` (default: cfg.steps), checkpointing and logging on the way."""
        from tqdm import tqdm

        cfg = self.cfg
        end = min(cfg.steps, until_step) if until_step is not None else cfg.steps
        if self.step >= end:
            return
        self.model.train()
        stream = SynthStream(cfg, self.step, int(self.model.image_size))
        loader = DataLoader(stream, batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None)
        sums: dict[str, float] = defaultdict(float)
        n, t_log = 0, time.perf_counter()
        bar = tqdm(total=end, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._forget_log_after(self.step)
        with open(self.run_dir / LOG, "a") as log:
            for data_step, batch in loader:
                assert data_step == self.step, (data_step, self.step)
                t0 = time.perf_counter()
                losses = self.train_step(batch)
                self.elapsed_s += time.perf_counter() - t0
                for k, v in losses.items():
                    sums[k] += v
                n += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == end:
                    now = time.perf_counter()
                    rec = {"step": self.step, "lr": lr_at(cfg, self.step - 1), "s_per_step": (now - t_log) / n,
                           "elapsed_s": round(self.elapsed_s, 1), **{k: sums[k] / n for k in LOSS_KEYS}}
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{rec['core_loss']:.3f}", dice=f"{rec['loss_dice']:.3f}")
                    sums.clear()
                    n, t_log = 0, now
                # The schedule's last step is validated too: it is the weights `train ship` takes,
                # and a --val-every that does not divide --steps would otherwise leave it unscored.
                if cfg.val_every and (self.step % cfg.val_every == 0 or self.step == cfg.steps):
                    self._validate_and_keep_best(log)
                if self.step % cfg.checkpoint_every == 0 or self.step == end:
                    self.save()
                if self.step >= end:
                    break
        bar.close()
