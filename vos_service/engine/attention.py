"""Memory attention for the objects of one frame, sharing what does not depend on the object.

sam2's ``MemoryAttention.forward`` runs every layer on a batch of objects. Two
things in it do not depend on the object and are computed once per frame here:

* the input (image features + 0.1 * position encoding);
* layer 1's self-attention, which reads only that input (the memories enter at the
  cross-attention that follows it). Layers 2..n self-attend to object-specific
  states and cannot be shared.

The rest runs per chunk of objects (`chunk` objects per call, 0 = all at once).
On CPU, one object a call is faster than the batch (its keys and values stay in
cache between projection and attention: measured in benchmarks/engine_vs_official.py);
on CUDA, the whole batch in one call. With chunk 1 every object's numbers are those
of the official per-object loop bit for bit (same ops, same shapes); batched they
differ only by float summation order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def auto_chunk(device: torch.device | str) -> int:
    """Objects per memory-attention call: 1 on CPU (cache locality wins), all on an accelerator."""
    return 1 if torch.device(device).type == "cpu" else 0


@dataclass
class FrameQuery:
    """What every object's memory attention on one frame starts from (batch 1, batch-first)."""

    x: torch.Tensor  # (1, HW, C): the input after layer 1's self-attention
    pos: torch.Tensor  # (1, HW, C): the query position encoding


def frame_query(ma, curr: torch.Tensor, curr_pos: torch.Tensor) -> FrameQuery:
    """curr, curr_pos: (HW, 1, C) seq-first image features of the frame -> its FrameQuery."""
    assert ma.batch_first, "sam2 memory attention configs are batch-first"
    x = curr + 0.1 * curr_pos if ma.pos_enc_at_input else curr
    qpos = curr_pos.transpose(0, 1)
    return FrameQuery(ma.layers[0]._forward_sa(x.transpose(0, 1), qpos), qpos)


def memory_attention(ma, query: FrameQuery, memory: torch.Tensor, memory_pos: torch.Tensor,
                     num_obj_ptr_tokens: int, chunk: int) -> torch.Tensor:
    """sam2 MemoryAttention.forward for B objects of one frame.

    memory, memory_pos: (N, B, C_mem) seq-first, one column per object.
    Returns (HW, B, C), as ``ma(curr=[curr.expand(..B..)], ...)`` would.
    """
    B = memory.size(1)
    first, *rest = ma.layers
    memory, memory_pos = memory.transpose(0, 1), memory_pos.transpose(0, 1)  # (B, N, C_mem)
    step = B if chunk <= 0 else chunk
    outs = []
    for s in range(0, B, step):
        mem, mpos = memory[s:s + step], memory_pos[s:s + step]
        b = mem.size(0)
        y, qp = query.x.expand(b, -1, -1), query.pos.expand(b, -1, -1)
        y = _after_self_attention(first, y, mem, qp, mpos, num_obj_ptr_tokens)
        for layer in rest:
            y = layer._forward_sa(y, qp)
            y = _after_self_attention(layer, y, mem, qp, mpos, num_obj_ptr_tokens)
        outs.append(ma.norm(y))
    out = outs[0] if len(outs) == 1 else torch.cat(outs, 0)
    return out.transpose(0, 1)


def _after_self_attention(layer, tgt, memory, query_pos, pos, num_k_exclude_rope: int) -> torch.Tensor:
    """MemoryAttentionLayer.forward minus its self-attention: cross-attention, then the MLP."""
    tgt = layer._forward_ca(tgt, memory, query_pos, pos, num_k_exclude_rope)
    tgt2 = layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm3(tgt)))))
    return tgt + layer.dropout3(tgt2)
