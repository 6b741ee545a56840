"""Per-object SAM 2 memory: storage (ObjectMemory) apart from policy (MemoryPolicy).

SAM 2 reads, for frame t (sam2_base._prepare_memory_conditioned_features):
  * every prompted (conditioning) memory, temporal slot 0;
  * the recent memories of frames t-1 .. t-6, frame t-k in slot k;
  * object pointers of the prompted frames at or before t, plus those of
    frames t-1 .. t-15, with a temporal encoding of the distance.
So recent entries must outlive their memory features: pointers reach 15
frames back, spatial memories only 6. The prompted bank is bounded by an
explicit policy; an entry pushed out of it becomes a recent entry, which is
exactly what the official predictor does with conditioning frames it does
not select (`unselected_cond_outputs`), so it ages out like any other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

import torch

from .types import PromptedPolicy


class MemoryKind(str, enum.Enum):
    PROMPTED = "prompted"  # a frame where the object got a prompt (click, box, mask, correction)
    RECENT = "recent"  # a frame the tracker propagated to


@dataclass
class MemoryEntry:
    """What the memory encoder and the mask decoder left for one object on one frame."""

    frame_index: int
    kind: MemoryKind
    maskmem: Optional[torch.Tensor]  # (C_mem, h, w) bfloat16 (as the official stores it); None once too old
    obj_ptr: torch.Tensor  # (C,) float32 object pointer

    def nbytes(self) -> int:
        n = self.obj_ptr.numel() * self.obj_ptr.element_size()
        if self.maskmem is not None:
            n += self.maskmem.numel() * self.maskmem.element_size()
        return n


@dataclass(frozen=True)
class MemoryConfig:
    """Bank sizes and the prompted-bank policy. Fixed for a tracker's lifetime."""

    num_recent: int = 6  # recent memories read (model.num_maskmem - 1)
    ptr_window: int = 15  # recent pointers read (model.max_obj_ptrs_in_encoder - 1)
    max_prompted: int = 4  # prompted memories kept per object (>= 1)
    prompted_policy: PromptedPolicy = PromptedPolicy.FIRST_AND_RECENT
    rewind: int = 7  # how many frames behind the latest a prompt may land (feature ring - 1)


@dataclass(frozen=True)
class MemoryRead:
    """What one object reads on frame t, in the official concatenation order.

    memories: (entry, slot) with slot the index into maskmem_tpos_enc
    (num_maskmem-1 for prompted, k-1 for frame t-k).
    pointers: (entry, t - j), the signed frame distance of each pointer.
    """

    frame_index: int
    memories: tuple[tuple[MemoryEntry, int], ...]
    pointers: tuple[tuple[MemoryEntry, int], ...]

    @property
    def signature(self) -> tuple[int, int]:
        """Objects with equal signatures have equal token counts and batch together."""
        return len(self.memories), len(self.pointers)


class ObjectMemory:
    """Storage only: the prompted bank and the recent entries of one object, by frame."""

    def __init__(self) -> None:
        self.prompted: dict[int, MemoryEntry] = {}
        self.recent: dict[int, MemoryEntry] = {}

    def put(self, entry: MemoryEntry) -> None:
        """Insert or replace the entry of entry.frame_index (a frame holds one kind only)."""
        f = entry.frame_index
        self.recent.pop(f, None)
        self.prompted.pop(f, None)
        bank = self.prompted if entry.kind is MemoryKind.PROMPTED else self.recent
        bank[f] = entry

    def has_prompt(self, frame_index: int) -> bool:
        return frame_index in self.prompted

    def __contains__(self, frame_index: int) -> bool:
        return frame_index in self.prompted or frame_index in self.recent

    def entries(self) -> list[MemoryEntry]:
        return [*self.prompted.values(), *self.recent.values()]

    def nbytes(self) -> int:
        return sum(e.nbytes() for e in self.entries())


class MemoryPolicy:
    """Decides what is read, what is demoted from the prompted bank and what is evicted."""

    def __init__(self, config: MemoryConfig, num_maskmem: int) -> None:
        if config.max_prompted < 1:
            raise ValueError("max_prompted must be >= 1")
        if config.num_recent > num_maskmem - 1:
            raise ValueError("num_recent cannot exceed the model's num_maskmem - 1")
        self.config = config
        self.prompted_slot = num_maskmem - 1

    def read(self, mem: ObjectMemory, t: int) -> MemoryRead:
        """The memories and pointers frame t attends to (see the module docstring)."""
        cfg = self.config
        prompted = sorted(mem.prompted.values(), key=lambda e: e.frame_index)
        memories = [(e, self.prompted_slot) for e in prompted]
        for k in range(cfg.num_recent, 0, -1):  # official order: t-6 first, t-1 last
            e = mem.recent.get(t - k)
            if e is not None and e.maskmem is not None:
                memories.append((e, k - 1))
        pointers = [(e, t - e.frame_index) for e in prompted if e.frame_index <= t]
        for d in range(1, cfg.ptr_window + 1):
            if t - d < 0:
                break
            e = mem.recent.get(t - d)
            if e is not None:
                pointers.append((e, d))
        return MemoryRead(t, tuple(memories), tuple(pointers))

    def write(self, mem: ObjectMemory, entry: MemoryEntry) -> None:
        """Store entry; if the prompted bank overflows, demote one prompted entry to recent."""
        mem.put(entry)
        while len(mem.prompted) > self.config.max_prompted:
            frames = sorted(mem.prompted)
            if self.config.prompted_policy is PromptedPolicy.FIRST_AND_RECENT and len(frames) > 1:
                victim = frames[1]  # keep the first prompt: it defines the object
            else:
                victim = frames[0]
            e = mem.prompted.pop(victim)
            e.kind = MemoryKind.RECENT
            mem.recent[victim] = e

    def evict(self, mem: ObjectMemory, latest: int) -> None:
        """Drop what no frame that may still be computed (>= latest - rewind) can read."""
        cfg = self.config
        oldest_computable = latest - cfg.rewind
        for f in list(mem.recent):
            if f < oldest_computable - cfg.ptr_window:
                del mem.recent[f]
            elif f < oldest_computable - cfg.num_recent:
                mem.recent[f].maskmem = None  # only its pointer is still read
