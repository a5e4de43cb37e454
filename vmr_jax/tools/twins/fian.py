"""FIAN in eager PyTorch: the twin of `vmr_jax.models.fian` (GloVe + BiGRU queries),
on query-level batches.

The window layout (Sec. 3.4) is written here from the paper's definition, not taken
from the Flax model: a twin sharing a helper with its model would share its bugs.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vmr_jax.tools.twins import common

ENCODERS = ("qv_query", "qv_video", "vq_video", "vq_query")


def window_layout(cfg) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """The window sizes `cfg.windows` and their strides: "stride size as 0.125 of kernel
  size" (Sec. 3.4), round(w * `cfg.stride_ratio`) clips, at least one."""
  sizes = tuple(int(w) for w in cfg.windows)
  return sizes, tuple(max(1, int(round(w * cfg.stride_ratio))) for w in sizes)


class FIAN(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int):
    super().__init__()
    cfg = self.cfg = config.fian
    d = cfg.hidden
    self.config, self.num_clips = config, config.data.num_clips
    self.text_encoder = common.text_encoder(config, vocab_size)
    self.video_input = nn.Linear(feature_dim, d)
    self.video_self_attention = common.TransformerLayer(d, cfg.num_heads, cfg.mlp_dim,
                                                        cfg.dropout, cfg.dropout)
    self.video_gru = common.rnn("gru", d, d // 2)
    for name in ENCODERS:
      self.add_module(name, common.TransformerLayer(d, cfg.num_heads, cfg.mlp_dim,
                                                    cfg.dropout, cfg.dropout, gated=True))
    words = config.data.max_words
    self.q1_to_clips = nn.Linear(words, self.num_clips)
    self.q2_to_clips = nn.Linear(words, self.num_clips)
    self.filter = nn.Linear(2 * d, 2 * d)
    self.integration_norm = common.layer_norm(2 * d)
    self.fused_gru = common.rnn("gru", 2 * d, d // 2)
    self.windows = window_layout(cfg)
    common.add_window_convs(self, "score", d, 1, *self.windows)
    common.add_window_convs(self, "offset", d, 2, *self.windows)

  def forward(self, batch):
    """-> {"logits" [B, N], "offsets" [B, N, 2]} of a query-level batch."""
    word_mask, clip_mask = batch["query_mask"], batch["video_mask"]
    words, _ = self.text_encoder(batch["query_tokens"], word_mask)
    video = self.video_self_attention(self.video_input(batch["video_feats"]), clip_mask)
    video, _ = common.packed_rnn(self.video_gru, video, clip_mask)
    q1 = self.qv_query(words, word_mask, video, clip_mask)  # Eq. 9
    v1 = self.qv_video(video, clip_mask, q1, word_mask)
    v2 = self.vq_video(video, clip_mask, words, word_mask)  # Eq. 10
    q2 = self.vq_query(words, word_mask, v2, clip_mask)
    keep = word_mask[..., None].to(words.dtype)
    to_clips = lambda proj, q: proj((q * keep).transpose(1, 2)).transpose(1, 2)
    query_pair = torch.cat([to_clips(self.q1_to_clips, q1), to_clips(self.q2_to_clips, q2)],
                           -1)
    ratio = torch.sigmoid(self.filter(query_pair))
    fused = self.integration_norm(torch.cat([v1, v2], -1) + ratio * query_pair)
    fused, _ = common.packed_rnn(self.fused_gru, fused, clip_mask)
    return {"logits": common.window_conv(self, fused, "score", *self.windows)[..., 0],
            "offsets": common.window_conv(self, fused, "offset", *self.windows)}

  def candidates(self, batch):
    spans = common.window_spans(self.num_clips, *self.windows)
    times, valid = common.clip_spans_to_times(spans, batch["video_mask"], batch["duration"])
    return times, valid, common.clip_seconds(batch["video_mask"], batch["duration"])

  def loss(self, outputs, batch):
    """`fian.loss` (Eq. 15-18)."""
    cfg = self.cfg
    times, valid, seconds = self.candidates(batch)
    gt = batch["gt_times"]
    iou = common.pairwise_iou(times, gt[:, None])[..., 0]
    above = (iou > cfg.positive_iou) & valid
    best = F.one_hot(torch.where(valid, iou, -1.0).argmax(-1), iou.shape[-1]).bool()
    positive = above | (best & ~above.any(-1, keepdim=True))
    negative = valid & ~positive
    bce = common.scaled_iou_bce(outputs["logits"], iou)
    align = (common.masked_average(bce, positive, -1)
             + common.masked_average(bce, negative, -1))
    target = (gt[:, None] - times) / seconds[:, None, None]
    smooth_l1 = F.smooth_l1_loss(outputs["offsets"], target, reduction="none").sum(-1)
    boundary = common.masked_average(smooth_l1, positive, -1)
    terms = {"align": common.masked_average(align, batch["example_valid"]),
             "boundary": common.masked_average(boundary, batch["example_valid"])}
    return terms["align"] + cfg.alpha * terms["boundary"], terms

  def decode(self, outputs, batch):
    times, valid, seconds = self.candidates(batch)
    moved = times + outputs["offsets"] * seconds[:, None, None]
    moved = torch.minimum(moved.clamp(min=0), batch["duration"][:, None, None])
    moved = moved.sort(-1).values
    scores = torch.where(valid, torch.sigmoid(outputs["logits"]), -torch.inf)
    return common.top_moments(scores[:, None], moved, self.config.eval.top_k)[:, 0]
