"""Does one click on a real object keep the mask on it? Hand-placed points on real clips.

The real clips (``../shared/data/videos``) have no ground-truth masks, so a person looked
at frames of each clip and placed, per checked frame, one point inside the clicked object
and one on the nearest other object (coordinates in the clip's own 1280x720 pixels). The
tracker gets one positive click on frame 0 and runs over every frame up to the last
check, as a camera stream would; a check passes when the inside point is in the mask and
the outside point is not. Frames are decoded at half size (the model sees 256 px anyway);
points are scaled to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vos_service.engine.model import LoadedModel
from vos_service.engine.tracker import StreamTracker, TrackerConfig
from vos_service.engine.types import Prompt

__all__ = ["REAL_CASES", "CaseOutcome", "CheckOutcome", "PointCheck", "RealCase", "overlay", "run_case"]

Point = tuple[float, float]
_DECODE_SCALE = 0.5  # 1280x720 clips decoded at 640x360


@dataclass(frozen=True)
class PointCheck:
    frame: int
    inside: Point    # on the clicked object
    outside: Point   # on the nearest other object


@dataclass(frozen=True)
class RealCase:
    video: str
    what: str
    click: Point     # the operator's click on frame 0
    checks: tuple[PointCheck, ...]
    other: str = ""  # what the outside points are on


# Placed by eye on frames drawn with a 50 px grid (see the model card's history). The dog
# and the mug move across the frame; the cups only until the shuffle starts (frame ~45):
# after it, which red cup is which cannot be told reliably from single frames.
REAL_CASES = (
    RealCase("01_dog.mp4", "the dog", (600, 430), other="the person's jeans", checks=(
        PointCheck(0, (620, 440), (280, 420)), PointCheck(60, (1080, 450), (290, 400)),
        PointCheck(120, (1050, 450), (270, 400)), PointCheck(180, (550, 440), (266, 392)),
        PointCheck(240, (790, 480), (222, 395)), PointCheck(288, (620, 440), (358, 392)))),
    RealCase("04_coffee.mp4", "the blue mug", (870, 510), other="the kettle", checks=(
        PointCheck(0, (870, 520), (560, 500)), PointCheck(70, (815, 470), (480, 220)),
        PointCheck(140, (810, 460), (494, 160)), PointCheck(210, (805, 450), (519, 132)),
        PointCheck(286, (800, 440), (450, 150)))),
    RealCase("02_cups.mp4", "the right cup", (915, 420), other="the middle cup", checks=(
        PointCheck(0, (915, 430), (655, 430)), PointCheck(15, (915, 430), (655, 430)),
        PointCheck(30, (915, 430), (655, 430)), PointCheck(45, (915, 440), (655, 440)))),
)


@dataclass(frozen=True)
class CheckOutcome:
    frame: int
    inside_hit: bool   # the inside point is in the mask (wanted)
    outside_hit: bool  # the outside point is in the mask (not wanted)
    mask_px: int       # mask area at decode size: 0 means the object was lost

    @property
    def held(self) -> bool:
        return self.inside_hit and not self.outside_hit


@dataclass(frozen=True)
class CaseOutcome:
    video: str
    what: str
    checks: tuple[CheckOutcome, ...]

    @property
    def held(self) -> int:
        return sum(c.held for c in self.checks)

    def to_dict(self) -> dict:
        return {"video": self.video, "what": self.what, "held": self.held, "checks": len(self.checks),
                "failed_frames": [c.frame for c in self.checks if not c.held]}


def _hit(mask: np.ndarray, p: Point) -> bool:
    x, y = (int(v * _DECODE_SCALE) for v in p)
    return bool(mask[y, x])


def run_case(model: LoadedModel, case: RealCase, videos_dir: Path, config: TrackerConfig = TrackerConfig(),
             on_frame=None) -> CaseOutcome:
    """Track ``case``'s object from its frame-0 click to the last check; ``on_frame(index,
    frame, mask)`` (optional) sees every checked frame, e.g. to draw overlays."""
    import av

    by_frame = {c.frame: c for c in case.checks}
    last = max(by_frame)
    tracker = StreamTracker(model, config)
    outcomes = []
    with av.open(str(Path(videos_dir) / case.video)) as container:
        stream = container.streams.video[0]
        w, h = (round(stream.codec_context.width * _DECODE_SCALE), round(stream.codec_context.height * _DECODE_SCALE))
        for i, frame in enumerate(container.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
            result = tracker.track(rgb)
            if i == 0:
                x, y = (v * _DECODE_SCALE for v in case.click)
                result = tracker.add_prompt(1, Prompt.from_points([[x, y]], [1]))[0]
            if i in by_frame:
                mask = result.by_id()[1].mask
                check = by_frame[i]
                outcomes.append(CheckOutcome(i, _hit(mask, check.inside), _hit(mask, check.outside),
                                             int(mask.sum())))
                if on_frame is not None:
                    on_frame(i, rgb, mask)
            if i >= last:
                break
    if len(outcomes) != len(by_frame):
        raise ValueError(f"{case.video} ended before frame {last}")
    return CaseOutcome(case.video, case.what, tuple(outcomes))


def overlay(rgb: np.ndarray, mask: np.ndarray, check: PointCheck) -> np.ndarray:
    """The frame with the mask tinted blue, the inside point green and the outside point red."""
    import cv2

    out = rgb.copy()
    out[mask] = (out[mask] * 0.5 + np.array([0, 0, 127])).astype(np.uint8)
    for p, colour in ((check.inside, (0, 255, 0)), (check.outside, (255, 0, 0))):
        cv2.circle(out, tuple(int(v * _DECODE_SCALE) for v in p), 5, colour, -1)
    cv2.putText(out, f"#{check.frame}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 0), 2)
    return out
