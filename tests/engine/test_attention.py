"""engine.attention against sam2's own MemoryAttention.forward on identical inputs.

One object a call (the CPU path) must equal the official per-object call bit for bit:
the shared first self-attention is the same op on the same batch-1 input. The batched
path (all objects in one call) equals the official batched call up to float order.
"""

from __future__ import annotations

import pytest
import torch

from tests.engine.factories import make_model
from vos_service.engine.attention import auto_chunk, frame_query, memory_attention

HW, N_MEM, N_PTR_TOKENS = 16 * 16, 3, 8


@pytest.fixture(scope="module")
def inputs():
    sam = make_model(256).sam
    g = torch.Generator().manual_seed(0)
    B, C, Cm = 3, sam.hidden_dim, sam.mem_dim
    n = N_MEM * HW + N_PTR_TOKENS
    curr, curr_pos = torch.randn(HW, 1, C, generator=g), torch.randn(HW, 1, C, generator=g)
    memory, memory_pos = torch.randn(n, B, Cm, generator=g), torch.randn(n, B, Cm, generator=g)
    return sam.memory_attention, curr, curr_pos, memory, memory_pos


def official(ma, curr, curr_pos, memory, memory_pos):
    B = memory.size(1)
    return ma(curr=[curr.expand(-1, B, -1)], curr_pos=[curr_pos.expand(-1, B, -1)], memory=memory,
              memory_pos=memory_pos, num_obj_ptr_tokens=N_PTR_TOKENS)


@torch.inference_mode()
def test_one_object_per_call_is_the_official_per_object_loop_exactly(inputs):
    ma, curr, curr_pos, memory, memory_pos = inputs
    ours = memory_attention(ma, frame_query(ma, curr, curr_pos), memory, memory_pos, N_PTR_TOKENS, chunk=1)
    assert ours.shape == (HW, memory.size(1), curr.size(2))
    for b in range(memory.size(1)):
        ref = official(ma, curr, curr_pos, memory[:, b:b + 1], memory_pos[:, b:b + 1])
        assert torch.equal(ours[:, b:b + 1], ref), f"object {b} differs"


@torch.inference_mode()
@pytest.mark.parametrize("chunk", [0, 2])
def test_batched_calls_match_the_official_batch(inputs, chunk):
    ma, curr, curr_pos, memory, memory_pos = inputs
    ref = official(ma, curr, curr_pos, memory, memory_pos)
    ours = memory_attention(ma, frame_query(ma, curr, curr_pos), memory, memory_pos, N_PTR_TOKENS, chunk=chunk)
    assert ref.abs().max() > 0.1  # not a vacuous comparison
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # the objects really differ (their memories do), so a mix-up of columns would fail
    assert not torch.allclose(ours[:, 0], ours[:, 1], atol=1e-3)


def test_auto_chunk_by_device():
    assert auto_chunk("cpu") == 1
    assert auto_chunk("cuda") == 0
