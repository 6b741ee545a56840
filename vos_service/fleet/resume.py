"""Re-seeding a stream that comes back (a reconnect after its replica died or the proxy
restarted) from what Redis holds of it: its newest masklet, one mask per object.

The masklets key is the stream's journal of latest masks: any replica reading it can
continue the stream where the last one stopped publishing. What is lost: the memory bank
(the prompted and recent memories), so the first frames after a resume track from one mask
each; and the frames that were in flight at the failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..engine.types import Prompt
from ..io.rle import RleError, decode_untrusted
from ..publish.schema import MaskletMessage
from ..runtime.types import PromptSpec


@dataclass(frozen=True)
class Resumed:
    """What a re-opened stream continues from."""

    from_frame: int  # the newest frame index Redis held a masklet of
    prompts: tuple[PromptSpec, ...]  # one mask prompt per object that was visible there
    skipped: tuple[int, ...] = ()  # objects whose stored mask did not fit the new stream


def resume_prompts(last: Optional[MaskletMessage], height: int, width: int, max_rle_bytes: int) -> Optional[Resumed]:
    """Mask prompts from the stream's newest masklet; None when there is nothing to resume.

    Redis may be shared with other writers, so its RLEs are decoded like a client's
    (decode_untrusted): sizes must be this stream's frame size, or the object is skipped.
    """
    if last is None:
        return None
    prompts, skipped = [], []
    for obj in last.objects:
        if not obj.visible:
            continue
        try:
            mask = decode_untrusted(obj.rle.get("size"), obj.rle.get("counts", ""), height, width, max_rle_bytes)
        except (RleError, AttributeError, TypeError):
            skipped.append(obj.obj_id)
            continue
        if mask.any():
            prompts.append(PromptSpec(obj.obj_id, Prompt(mask=mask)))
    return Resumed(last.frame_index, tuple(prompts), tuple(skipped))
