"""Re-seeding a stream that comes back (a reconnect after its replica died or the proxy
restarted) from what Redis holds of it: its newest masklets, one mask per object.

The masklets key is the stream's journal of latest masks: any replica reading it can
continue the stream where the last one stopped publishing. Every object of the newest
masklet is seeded from its newest *visible* mask among the last ``RESUME_LOOKBACK``
entries: an object hidden at the moment of the failure (behind something, out of frame,
or judged absent for a frame) is still tracked afterwards, from where it was last seen,
instead of being dropped for good. What is lost: the memory bank (the prompted and recent
memories), so the first frames after a resume track from one mask each; and the frames
that were in flight at the failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ..engine.types import Prompt
from ..io.rle import RleError, decode_untrusted
from ..publish.schema import MaskletMessage
from ..runtime.types import PromptSpec

RESUME_LOOKBACK = 90  # entries read back (~3 s at 30 fps): an object hidden longer is not resumed


@dataclass(frozen=True)
class Resumed:
    """What a re-opened stream continues from."""

    from_frame: int  # the newest frame index Redis held a masklet of
    prompts: tuple[PromptSpec, ...]  # one mask prompt per object seen in the look-back
    skipped: tuple[int, ...] = ()  # objects whose stored mask did not fit the new stream
    earlier: tuple[tuple[int, int], ...] = ()  # (object, frame) seeded from a frame before from_frame


def resume_prompts(recent: Sequence[MaskletMessage], height: int, width: int,
                   max_rle_bytes: int) -> Optional[Resumed]:
    """Mask prompts from the stream's newest masklets (newest first); None when there are none.

    Redis may be shared with other writers, so its RLEs are decoded like a client's
    (decode_untrusted): sizes must be this stream's frame size, or the object is skipped.
    """
    if not recent:
        return None
    prompts, skipped, earlier = [], [], []
    for obj_id in (o.obj_id for o in recent[0].objects):
        seen = next(((m.frame_index, o) for m in recent for o in m.objects if o.obj_id == obj_id and o.visible), None)
        if seen is None:
            continue  # not visible in the whole look-back: nothing to seed it from
        frame, obj = seen
        try:
            mask = decode_untrusted(obj.rle.get("size"), obj.rle.get("counts", ""), height, width, max_rle_bytes)
        except (RleError, AttributeError, TypeError):
            skipped.append(obj_id)
            continue
        if mask.any():
            prompts.append(PromptSpec(obj_id, Prompt(mask=mask)))
            if frame != recent[0].frame_index:
                earlier.append((obj_id, frame))
    return Resumed(recent[0].frame_index, tuple(prompts), tuple(skipped), tuple(earlier))
