"""Bank bounds, read order and eviction of engine/memory.py, with no model."""

from __future__ import annotations

import pytest
import torch

from vos_service.engine.memory import MemoryConfig, MemoryEntry, MemoryKind, MemoryPolicy, ObjectMemory
from vos_service.engine.types import PromptedPolicy

NUM_MASKMEM = 7


def entry(f: int, kind=MemoryKind.RECENT) -> MemoryEntry:
    return MemoryEntry(f, kind, torch.full((4, 2, 2), float(f), dtype=torch.bfloat16), torch.full((8,), float(f)))


def policy(**kw) -> MemoryPolicy:
    return MemoryPolicy(MemoryConfig(**kw), NUM_MASKMEM)


def stream(pol: MemoryPolicy, frames: int, prompted_at=()) -> ObjectMemory:
    mem = ObjectMemory()
    for t in range(frames):
        pol.write(mem, entry(t, MemoryKind.PROMPTED if t in prompted_at else MemoryKind.RECENT))
        pol.evict(mem, t)
    return mem


def test_read_matches_sam2_layout():
    pol = policy(rewind=0)
    mem = stream(pol, 30, prompted_at={0, 20})
    r = pol.read(mem, 30)
    # prompted first (slot num_maskmem-1), then t-6 .. t-1 in slots 5 .. 0
    assert [(e.frame_index, s) for e, s in r.memories] == \
        [(0, 6), (20, 6), (24, 5), (25, 4), (26, 3), (27, 2), (28, 1), (29, 0)]
    # pointers: prompted at or before t (distance t - j), then t-1 .. t-15, skipping prompted frames
    assert [(e.frame_index, d) for e, d in r.pointers] == \
        [(0, 30), (20, 10)] + [(30 - d, d) for d in range(1, 16) if 30 - d != 20]
    assert r.signature == (8, 16)


def test_read_skips_missing_frames_and_future_pointers():
    pol = policy(rewind=3)
    mem = ObjectMemory()
    for f in (0, 2, 5):
        pol.write(mem, entry(f))
    pol.write(mem, entry(9, MemoryKind.PROMPTED))
    r = pol.read(mem, 6)
    assert [e.frame_index for e, _ in r.memories] == [9, 0, 2, 5]  # the prompt at 9 is read (as official)
    assert [e.frame_index for e, _ in r.pointers] == [5, 2, 0]  # but not its pointer: 9 > 6


@pytest.mark.parametrize("policy_kind,kept", [(PromptedPolicy.FIRST_AND_RECENT, [0, 40, 50, 60]),
                                               (PromptedPolicy.RECENT, [30, 40, 50, 60])])
def test_prompted_bank_is_bounded_with_explicit_policy(policy_kind, kept):
    pol = policy(max_prompted=4, prompted_policy=policy_kind, rewind=0)
    mem = stream(pol, 61, prompted_at={0, 10, 20, 30, 40, 50, 60})
    assert sorted(mem.prompted) == kept
    assert all(e.kind is MemoryKind.PROMPTED for e in mem.prompted.values())


def test_demoted_prompt_ages_out_like_a_recent_frame():
    """Official max_cond_frames_in_attn semantics: an unselected prompt still counts as recent."""
    pol = policy(max_prompted=2, prompted_policy=PromptedPolicy.RECENT, rewind=0)
    mem = ObjectMemory()
    for t in range(10):
        pol.write(mem, entry(t, MemoryKind.PROMPTED if t in (0, 7, 8) else MemoryKind.RECENT))
        pol.evict(mem, t)
    assert sorted(mem.prompted) == [7, 8]
    r = pol.read(mem, 10)
    assert 0 not in [e.frame_index for e, _ in r.memories]  # t-10: outside the 6-frame window
    assert 0 in [e.frame_index for e, _ in r.pointers]  # but within the 15-frame pointer window
    assert mem.recent[0].kind is MemoryKind.RECENT


def test_eviction_keeps_exactly_what_can_still_be_read():
    rewind = 5
    pol = policy(rewind=rewind)
    mem = stream(pol, 200, prompted_at={0})
    latest = 199
    oldest_computable = latest - rewind
    assert min(mem.recent) == oldest_computable - 15
    with_features = sorted(f for f, e in mem.recent.items() if e.maskmem is not None)
    assert with_features[0] == oldest_computable - 6
    # every frame that may still be (re)computed reads a full window
    for t in range(oldest_computable, latest + 2):
        r = pol.read(mem, t)
        assert len(r.memories) == 1 + 6 and len(r.pointers) == 1 + 15


def test_bytes_flat_over_long_stream_with_many_prompts():
    pol = policy(max_prompted=3, rewind=7)
    sizes = []
    mem = ObjectMemory()
    for t in range(3000):
        pol.write(mem, entry(t, MemoryKind.PROMPTED if t % 17 == 0 else MemoryKind.RECENT))
        pol.evict(mem, t)
        if t >= 100 and t % 100 == 0:
            sizes.append(mem.nbytes())
    # Bounded (the exact size wobbles with where prompts fall relative to the window) ...
    per_entry = entry(0).nbytes()
    assert max(sizes) <= (3 + 7 + 15 + 1) * per_entry
    # ... and not growing.
    assert max(sizes[len(sizes) // 2:]) <= max(sizes[:len(sizes) // 2])
    assert len(mem.prompted) == 3


def test_put_replaces_kind_of_a_frame():
    mem = ObjectMemory()
    mem.put(entry(3))
    mem.put(entry(3, MemoryKind.PROMPTED))
    assert 3 in mem.prompted and 3 not in mem.recent


def test_invalid_config_rejected():
    with pytest.raises(ValueError):
        policy(max_prompted=0)
    with pytest.raises(ValueError):
        policy(num_recent=7)
