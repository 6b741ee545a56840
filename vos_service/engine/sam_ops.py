"""Batched SAM 2 building blocks: image encoding, memory read, decoding, memory write.

Thin, batched wrappers over SAM2Base internals (sam2 1.1.0) so the engine
computes exactly what the official predictor computes, but for B objects of
one stream in one call where the official code loops over objects.
Layouts follow sam2: "seq-first" features are (HW, B, C).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from sam2.modeling.sam2_utils import get_1d_sine_pe

from .attention import FrameQuery, frame_query, memory_attention
from .memory import MemoryRead


@dataclass
class ImageFeatures:
    """Backbone output of one frame (batch 1), shared by all its objects."""

    feats: list[torch.Tensor]  # per level (HW, 1, C_l); the last level feeds memory attention
    pos: list[torch.Tensor]  # per level (HW, 1, C_l); constant for an image size
    sizes: list[tuple[int, int]]  # per level (H, W)

    def expanded(self, batch: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Views of feats and pos with batch `batch` (no copy)."""
        return ([f.expand(-1, batch, -1) for f in self.feats],
                [p.expand(-1, batch, -1) for p in self.pos])

    def high_res(self, batch: int) -> list[torch.Tensor]:
        """The decoder's high-resolution skip features, (B, C_l, H_l, W_l)."""
        return [f.permute(1, 2, 0).reshape(1, f.size(2), *s).expand(batch, -1, -1, -1)
                for f, s in zip(self.feats[:-1], self.sizes[:-1])]

    def top(self, batch: int) -> torch.Tensor:
        """The lowest-resolution level as (B, C, H, W)."""
        f, (h, w) = self.feats[-1], self.sizes[-1]
        return f.permute(1, 2, 0).reshape(1, f.size(2), h, w).expand(batch, -1, -1, -1)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.feats)


@dataclass
class Decoded:
    """Mask decoder output for B objects (the chosen mask of each)."""

    low_res: torch.Tensor  # (B, 1, S/4, S/4) float32 mask logits
    high_res: torch.Tensor  # (B, 1, S, S) float32 mask logits
    iou: torch.Tensor  # (B,) predicted IoU of the chosen mask
    obj_ptr: torch.Tensor  # (B, C) object pointers
    score: torch.Tensor  # (B, 1) object score logits


def encode_images(sam, images: torch.Tensor) -> list[ImageFeatures]:
    """(N, 3, S, S) normalised frames -> N ImageFeatures; one encoder pass for all N."""
    backbone_out = sam.forward_image(images)
    _, feats, pos, sizes = sam._prepare_backbone_features(backbone_out)
    n = images.size(0)
    out = []
    for i in range(n):
        # A per-frame copy so a cached frame does not pin the whole batch's storage.
        f_i = [f[:, i:i + 1].clone() if n > 1 else f for f in feats]
        p_i = [p[:, i:i + 1] for p in pos]
        out.append(ImageFeatures(f_i, p_i, list(sizes)))
    return out


def no_memory_features(sam, image: ImageFeatures, batch: int) -> torch.Tensor:
    """Initial-prompt frames attend to no memory: features + no_mem_embed, (B, C, H, W)."""
    assert sam.directly_add_no_mem_embed, "configs without directly_add_no_mem_embed are not supported"
    f, (h, w) = image.feats[-1], image.sizes[-1]
    x = f + sam.no_mem_embed  # (HW, 1, C)
    return x.permute(1, 2, 0).reshape(1, f.size(2), h, w).expand(batch, -1, -1, -1)


def image_query(sam, image: ImageFeatures) -> FrameQuery:
    """The object-independent start of memory attention on this frame (see engine.attention)."""
    return frame_query(sam.memory_attention, image.feats[-1], image.pos[-1])


def memory_conditioned_features(sam, image: ImageFeatures, reads: Sequence[MemoryRead],
                                maskmem_pos: torch.Tensor, chunk: int,
                                query: Optional[FrameQuery] = None) -> torch.Tensor:
    """Memory attention for objects whose reads share one signature -> (B, C, H, W).

    maskmem_pos: (h*w, C_mem) spatial position encoding of a memory (the same for
    every memory of this image size); chunk: objects per attention call (0 = all);
    query: this frame's image_query, when the caller shares it between calls.
    """
    B = len(reads)
    C, mem_dim = sam.hidden_dim, sam.mem_dim
    mem_rows, pos_rows = [], []
    for read in reads:
        mem = []
        for e, _ in read.memories:
            assert e.maskmem is not None  # the policy reads only entries that still hold a memory
            mem.append(e.maskmem.flatten(1).t().float())  # (hw, C_mem)
        pos = [maskmem_pos + sam.maskmem_tpos_enc[slot].view(1, mem_dim) for _, slot in read.memories]
        mem_rows.append(torch.cat(mem, 0))
        pos_rows.append(torch.cat(pos, 0))
    memory = torch.stack(mem_rows, 1)  # (N_mem*hw, B, C_mem)
    memory_pos = torch.stack(pos_rows, 1)

    n_ptr = len(reads[0].pointers)
    num_ptr_tokens = 0
    if n_ptr > 0:
        ptrs = torch.stack([torch.stack([e.obj_ptr for e, _ in r.pointers], 0) for r in reads], 1)  # (n, B, C)
        dist = torch.tensor([[d for _, d in r.pointers] for r in reads], device=ptrs.device).t()  # (n, B)
        t_diff_max = sam.max_obj_ptrs_in_encoder - 1  # a stream is endless: the >= 16-frame regime
        tpos_dim = C if sam.proj_tpos_enc_in_obj_ptrs else mem_dim
        ptr_pos = sam.obj_ptr_tpos_proj(get_1d_sine_pe(dist / t_diff_max, dim=tpos_dim))  # (n, B, C_mem)
        if mem_dim < C:  # each pointer becomes C / C_mem tokens, as in sam2
            ptrs = ptrs.reshape(n_ptr, B, C // mem_dim, mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            ptr_pos = ptr_pos.repeat_interleave(C // mem_dim, dim=0)
        memory = torch.cat([memory, ptrs.to(memory.dtype)], 0)
        memory_pos = torch.cat([memory_pos, ptr_pos.to(memory_pos.dtype)], 0)
        num_ptr_tokens = ptrs.size(0)

    query = query or image_query(sam, image)
    out = memory_attention(sam.memory_attention, query, memory, memory_pos, num_ptr_tokens, chunk)
    h, w = image.sizes[-1]
    return out.permute(1, 2, 0).reshape(B, C, h, w)


def decode(sam, pix_feat: torch.Tensor, image: ImageFeatures, *, point_inputs: Optional[dict],
           mask_inputs: Optional[torch.Tensor], multimask: bool) -> Decoded:
    """SAM prompt encoder + mask decoder on memory-conditioned features (B, C, H, W)."""
    B = pix_feat.size(0)
    _, _, ious, low, high, ptr, score = sam._forward_sam_heads(
        backbone_features=pix_feat, point_inputs=point_inputs, mask_inputs=mask_inputs,
        high_res_features=image.high_res(B), multimask_output=multimask)
    if multimask:  # _forward_sam_heads picks the best mask; its IoU is the max
        ious = ious.max(dim=-1).values
    else:
        ious = ious[:, 0]
    return Decoded(low.float(), high.float(), ious.float(), ptr.float(), score.float())


def mask_as_output(sam, image: ImageFeatures, mask_inputs: torch.Tensor) -> Decoded:
    """A mask prompt is taken as the output (use_mask_input_as_output_without_sam), B = 1."""
    low, high, ious, _, _, ptr, score = sam._use_mask_as_output(
        image.top(1), image.high_res(1), mask_inputs)
    return Decoded(low.float(), high.float(), ious[:, 0].float(), ptr.float(), score.float())


def encode_memory(sam, image: ImageFeatures, high_res: torch.Tensor, score: torch.Tensor,
                  from_prompt: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Memory encoder -> (maskmem (B, C_mem, h, w) bfloat16, spatial pos (h*w, C_mem)).

    Memories are stored in bfloat16 because the official predictor stores them so.
    """
    B = high_res.size(0)
    feats, _ = image.expanded(B)
    maskmem, pos = sam._encode_new_memory(
        current_vision_feats=feats, feat_sizes=image.sizes, pred_masks_high_res=high_res,
        object_score_logits=score, is_mask_from_pts=from_prompt)
    return maskmem.to(torch.bfloat16), pos[-1][0].flatten(1).t()


def upsample_to_model(sam, low_res: torch.Tensor) -> torch.Tensor:
    """(B, 1, S/4, S/4) -> (B, 1, S, S), as the official predictor re-expands prompt masks."""
    return F.interpolate(low_res, size=(sam.image_size, sam.image_size), mode="bilinear",
                         align_corners=False)
