"""StreamTracker: SAM 2 streaming segmentation of one video stream.

One image encoding per frame, shared by every object; memory attention,
mask decoding and memory writes batched across the stream's objects. The
per-frame step is `step()`; `track()` is preprocess + encode + step.
Prompts (new objects and corrections) may land on any frame still in the
feature ring; later frames are then re-propagated and returned revised.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..io.rle import mask_bbox
from . import sam_ops
from .attention import auto_chunk
from .encoder import ImageEncoder, StageTimer, no_timer
from .errors import InvalidPromptError, UnknownObjectError
from .frames import upsample_logits
from .memory import MemoryConfig, MemoryEntry, MemoryKind, MemoryPolicy, ObjectMemory
from .model import LoadedModel
from .ring import FeatureRing, ObjectFrameState, RingSlot
from .sam_ops import ImageFeatures
from .types import FrameResult, ObjectResult, Prompt, Stage


@dataclass(frozen=True)
class TrackerConfig:
    """Per-stream limits. Fixed for a tracker's lifetime."""

    feature_ring: int = 8  # cached frames a prompt may land on (the latest included)
    max_objects: int = 32  # objects one stream may track
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    # Objects per memory-attention call; None: by device (engine.attention.auto_chunk), 0: all.
    attention_chunk: Optional[int] = None


@dataclass
class TrackedObject:
    obj_id: int
    memory: ObjectMemory
    propagated: bool = False  # tracked past its first prompt (then re-prompts use memory, as official)


class StreamTracker:
    """Tracks any number of objects through one unbounded stream of frames."""

    def __init__(self, model: LoadedModel, config: TrackerConfig = TrackerConfig(),
                 encoder: Optional[ImageEncoder] = None, timer: StageTimer = no_timer) -> None:
        """encoder: share one between the streams of a service (frames batch across streams);
        timer: called with a stage name, returns a context manager timing that stage."""
        self.model = model
        self.timer = timer
        self._owns_encoder = encoder is None
        self.encoder = encoder or ImageEncoder(model, timer)
        self.sam = model.sam
        # Memories must reach as far back as a prompt can land: the ring decides.
        mem_cfg = replace(config.memory, rewind=config.feature_ring - 1)
        self.config = replace(config, memory=mem_cfg)
        self.policy = MemoryPolicy(mem_cfg, self.sam.num_maskmem)
        self.ring = FeatureRing(config.feature_ring)
        chunk = config.attention_chunk
        self.attention_chunk = auto_chunk(model.device) if chunk is None else chunk
        self.objects: dict[int, TrackedObject] = {}
        self.next_frame = 0
        self._maskmem_pos: Optional[torch.Tensor] = None  # (h*w, C_mem), constant per image size

    # ---- the per-frame path -------------------------------------------------

    def encode(self, frames: list[np.ndarray]) -> list[ImageFeatures]:
        """uint8 RGB frames (any size) -> image features; one encoder pass for all of them."""
        return self.encoder.encode(frames)

    def encode_images(self, images: torch.Tensor) -> list[ImageFeatures]:
        """(N, 3, S, S) normalised images -> image features (the official predictor's input)."""
        return self.encoder.encode_images(images)

    @torch.inference_mode()
    def track(self, frame: np.ndarray) -> FrameResult:
        """Segment every tracked object in the next frame: uint8 (H, W, 3) RGB."""
        return self.step(self.encode([frame])[0], frame.shape[0], frame.shape[1])

    @torch.inference_mode()
    def step(self, image: ImageFeatures, height: int, width: int) -> FrameResult:
        """Advance the stream by one frame whose features are already encoded."""
        slot = RingSlot(self.next_frame, image, height, width)
        self.ring.push(slot)
        self.next_frame += 1
        if self.objects:
            self._propagate(slot, list(self.objects), revise=False)
        for obj in self.objects.values():
            self.policy.evict(obj.memory, slot.frame_index)
        return self._result(slot)

    # ---- prompts and control ------------------------------------------------

    @torch.inference_mode()
    def add_prompt(self, obj_id: int, prompt: Prompt, frame_index: Optional[int] = None,
                   clear_previous: bool = True) -> list[FrameResult]:
        """Add an object or correct one on `frame_index` (default: the latest frame).

        Returns the results of that frame and, when it is not the latest, the
        revised results of every later frame in the ring, oldest first.
        """
        latest = self.ring.latest
        if latest is None:
            raise InvalidPromptError("no frame has been tracked yet: send a frame first")
        slot = self.ring.get(latest.frame_index if frame_index is None else frame_index)
        prompt.validate(slot.height, slot.width)
        if obj_id not in self.objects and len(self.objects) >= self.config.max_objects:
            raise InvalidPromptError(f"stream already tracks max_objects={self.config.max_objects}")
        obj = self.objects.get(obj_id) or TrackedObject(obj_id, ObjectMemory())
        self.objects[obj_id] = obj
        prev = slot.objects.get(obj_id)
        # Official semantics: a frame the object was not yet tracked on is an initial
        # conditioning frame (no memory read); otherwise the correction reads memory.
        is_init = prev is None or (prev.prompted and not obj.propagated)
        with self.model.autocast():
            state = self._decode_prompt(obj, slot, prompt, prev, is_init, clear_previous)
        slot.objects[obj_id] = state
        results = [self._result(slot)]
        for later in self.ring.after(slot.frame_index):
            if obj.memory.has_prompt(later.frame_index):
                continue  # a later prompt is kept as given, as the official propagation does
            self._propagate(later, [obj_id], revise=True)
            results.append(self._result(later))
        return results

    def remove_object(self, obj_id: int) -> None:
        if obj_id not in self.objects:
            raise UnknownObjectError(f"object {obj_id} is not tracked in this stream")
        del self.objects[obj_id]
        self.ring.forget_object(obj_id)

    def reset(self) -> None:
        """Forget every object and frame; the next frame is frame 0 again."""
        self.objects.clear()
        self.ring.clear()
        self.next_frame = 0
        self._maskmem_pos = None

    def nbytes(self) -> int:
        """Bytes of every tensor this tracker holds (features, outputs, memories, constants;
        a shared encoder's constants are not this tracker's)."""
        n = self.ring.nbytes() + sum(o.memory.nbytes() for o in self.objects.values())
        if self._maskmem_pos is not None:
            n += self._maskmem_pos.numel() * self._maskmem_pos.element_size()
        return n + (self.encoder.nbytes() if self._owns_encoder else 0)

    # ---- internals ----------------------------------------------------------

    def _propagate(self, slot: RingSlot, obj_ids: list[int], revise: bool) -> None:
        """Track `obj_ids` on `slot` from memory; write their recent memories and states."""
        t = slot.frame_index
        reads = {oid: self.policy.read(self.objects[oid].memory, t) for oid in obj_ids}
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for oid in obj_ids:
            groups[reads[oid].signature].append(oid)
        order: list[int] = []
        pix = []
        with self.model.autocast():
            with self.timer(Stage.MEMORY_ATTENTION):
                query = sam_ops.image_query(self.sam, slot.image)  # once per frame, for every object
                for ids in groups.values():  # equal token counts batch into one attention call
                    pix.append(sam_ops.memory_conditioned_features(
                        self.sam, slot.image, [reads[i] for i in ids], self._memory_pos(),
                        self.attention_chunk, query))
                    order.extend(ids)
                pix_feat = torch.cat(pix, 0) if len(pix) > 1 else pix[0]
            with self.timer(Stage.MASK_DECODE):
                dec = sam_ops.decode(self.sam, pix_feat, slot.image, point_inputs=None, mask_inputs=None,
                                     multimask=self.sam._use_multimask(False, None))
            with self.timer(Stage.MEMORY_ENCODE):
                maskmem = self._encode_memory(slot.image, dec.high_res, dec.score, from_prompt=False)
        for i, oid in enumerate(order):
            obj = self.objects[oid]
            self.policy.write(obj.memory, MemoryEntry(t, MemoryKind.RECENT, maskmem[i], dec.obj_ptr[i]))
            obj.propagated = True
            old = slot.objects.get(oid)
            slot.objects[oid] = ObjectFrameState(
                dec.low_res[i:i + 1], float(dec.score[i]), float(dec.iou[i]),
                revision=(old.revision + 1) if (revise and old is not None) else 0)

    def _decode_prompt(self, obj: TrackedObject, slot: RingSlot, prompt: Prompt,
                       prev: Optional[ObjectFrameState], is_init: bool,
                       clear_previous: bool) -> ObjectFrameState:
        """Decode one object's prompt on `slot` and write it as a prompted memory."""
        device = self.model.device
        points = None
        if prompt.mask is not None:
            mask_inputs = self._mask_to_model(prompt.mask)
            dec = sam_ops.mask_as_output(self.sam, slot.image, mask_inputs)
        else:
            points = self._points_to_model(prompt, slot, device)
            if not clear_previous and prev is not None and prev.points is not None:
                if prompt.box is not None:
                    raise InvalidPromptError("a box must clear previous points (SAM takes the box first)")
                points = {"point_coords": torch.cat([prev.points["point_coords"], points["point_coords"]], 1),
                          "point_labels": torch.cat([prev.points["point_labels"], points["point_labels"]], 1)}
            # The previous mask of this frame is a mask prompt too (clamped like official).
            prev_logits = None if prev is None else prev.low_res.clamp(-32.0, 32.0)
            if is_init:
                pix = sam_ops.no_memory_features(self.sam, slot.image, 1)
            else:
                read = self.policy.read(obj.memory, slot.frame_index)
                pix = sam_ops.memory_conditioned_features(self.sam, slot.image, [read], self._memory_pos(),
                                                          self.attention_chunk)
            dec = sam_ops.decode(self.sam, pix, slot.image, point_inputs=points, mask_inputs=prev_logits,
                                 multimask=self.sam._use_multimask(is_init, points))
        # Official: the prompted memory is encoded from the low-res output re-expanded to
        # S x S and binarised (is_mask_from_pts=True), whatever the prompt was.
        high = sam_ops.upsample_to_model(self.sam, dec.low_res)
        maskmem = self._encode_memory(slot.image, high, dec.score, from_prompt=True)
        self.policy.write(obj.memory, MemoryEntry(slot.frame_index, MemoryKind.PROMPTED,
                                                  maskmem[0], dec.obj_ptr[0]))
        return ObjectFrameState(dec.low_res, float(dec.score[0]), float(dec.iou[0]),
                                revision=0 if prev is None else prev.revision + 1,
                                prompted=True, points=points)

    def _memory_pos(self) -> torch.Tensor:
        # Set by the first memory encoded: memory is read only once an object has some.
        assert self._maskmem_pos is not None, "a memory read before any memory was encoded"
        return self._maskmem_pos

    def _encode_memory(self, image: ImageFeatures, high_res, score, from_prompt: bool) -> torch.Tensor:
        maskmem, pos = sam_ops.encode_memory(self.sam, image, high_res, score, from_prompt)
        if self._maskmem_pos is None or self._maskmem_pos.shape != pos.shape:
            self._maskmem_pos = pos.float().clone()
        return maskmem

    def _points_to_model(self, prompt: Prompt, slot: RingSlot, device) -> dict:
        """Source-pixel points/box -> sam2 point_inputs at model resolution (official arithmetic)."""
        pts = torch.zeros(0, 2) if prompt.points is None else torch.as_tensor(prompt.points, dtype=torch.float32)
        labels = torch.zeros(0, dtype=torch.int32) if prompt.labels is None else \
            torch.as_tensor(prompt.labels, dtype=torch.int32)
        if prompt.box is not None:  # a box is two points labelled 2 and 3, before the clicks
            box = torch.tensor(prompt.box, dtype=torch.float32).reshape(2, 2)
            pts = torch.cat([box, pts], 0)
            labels = torch.cat([torch.tensor([2, 3], dtype=torch.int32), labels], 0)
        pts = pts[None] / torch.tensor([slot.width, slot.height]) * self.model.image_size
        return {"point_coords": pts.to(device), "point_labels": labels[None].to(device)}

    def _mask_to_model(self, mask: np.ndarray) -> torch.Tensor:
        """(H, W) bool -> (1, 1, S, S) float {0, 1}, resized like the official add_new_mask."""
        S = self.model.image_size
        m = torch.as_tensor(np.asarray(mask, dtype=bool))[None, None].float().to(self.model.device)
        if m.shape[-2:] != (S, S):
            m = F.interpolate(m, size=(S, S), mode="bilinear", align_corners=False, antialias=True)
            m = (m >= 0.5).float()
        return m

    def _result(self, slot: RingSlot) -> FrameResult:
        """Masks at the source resolution for every object that has an output on `slot`."""
        ids = [oid for oid in self.objects if oid in slot.objects]
        if not ids:
            return FrameResult(slot.frame_index, [])
        states = [slot.objects[oid] for oid in ids]
        with self.timer(Stage.UPSAMPLE):  # to the source size: grows with the camera's resolution
            logits = upsample_logits(torch.cat([s.low_res for s in states]), slot.height, slot.width)
            masks = (logits[:, 0] > 0).cpu().numpy()
        objs = [ObjectResult(obj_id=oid, mask=m, score=s.score, visible=s.score > 0, iou=s.iou,
                             box=mask_bbox(m), revision=s.revision, prompted=s.prompted)
                for oid, s, m in zip(ids, states, masks)]
        return FrameResult(slot.frame_index, objs)

