"""CLEAR in eager PyTorch: the layers, sizes and losses of `vmr_jax.models.clear`
with the GloVe + BiGRU text encoder (the demo's), for timing only."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vmr_jax.layers.moment_map import dense_spans
from vmr_jax.models.clear import anchor_index
from vmr_jax.torch_equivalents.common import BiTCN, SentenceGRU, pairwise_iou


def max_pool_map(x):
  """`[B, L, D]` -> `[B, N, D]`, the running maximum of `moment_map.max_pool_map`."""
  rows, running = [x], x
  for k in range(1, x.shape[1]):
    running = torch.maximum(running[:, :-1], x[:, k:])
    rows.append(running)
  return torch.cat(rows, dim=1)


class CLEAR(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int, glove_dim: int):
    super().__init__()
    cfg, text = config.clear, config.text
    self.cfg, self.num_clips = cfg, config.data.num_clips
    self.tcn = BiTCN(feature_dim, cfg.hidden, cfg.tcn_layers, cfg.tcn_kernel)
    self.moment_mlp = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
                                    nn.Linear(cfg.hidden, cfg.dim))
    self.sentence = SentenceGRU(vocab_size, glove_dim, text.head_hidden, text.head_layers)
    self.query_fc = nn.Linear(2 * text.head_hidden, cfg.dim)
    self.fuse_kernel = nn.Parameter(torch.randn(cfg.dim, cfg.fine_hidden) / cfg.dim ** 0.5)
    self.fuse_bias = nn.Parameter(torch.zeros(cfg.fine_hidden))
    self.confidence = nn.Linear(cfg.fine_hidden, 1)
    spans = dense_spans(self.num_clips)
    spans[:, 1] += 1
    self.register_buffer("spans", torch.as_tensor(spans, dtype=torch.float32))
    self.register_buffer("anchors", torch.as_tensor(
        anchor_index(self.num_clips, cfg.tree_layers), dtype=torch.long))

  def forward(self, batch):
    """-> the loss Psi; batch: the numeric arrays of a video-level batch, as tensors."""
    units = self.tcn(batch["video_feats"], batch["video_mask"])
    moments = self.moment_mlp(max_pool_map(units))  # [B, N, d]
    queries = torch.relu(self.query_fc(self.sentence(batch["query_tokens"],
                                                     batch["query_mask"])))  # [B, Q, d]
    per_query = queries[..., None] * self.fuse_kernel  # [B, Q, d, h]
    hidden = torch.relu(torch.einsum("bnd,bqdh->bqnh", moments, per_query) + self.fuse_bias)
    logits = self.confidence(hidden)[..., 0]  # [B, Q, N]
    return self.loss(moments[:, self.anchors], queries, logits, batch)

  def loss(self, anchors, queries, logits, batch):
    cfg = self.cfg
    times = self.spans[None] * (batch["duration"] / self.num_clips)[:, None, None]
    iou = pairwise_iou(times, batch["gt_times"])  # [B, N, Q]
    valid = batch["query_valid"].float()
    residual = torch.einsum("brd,bqd->brq", anchors, queries) - cfg.dim * iou[:, self.anchors]
    pairs = (valid.sum(1) * anchors.shape[1]).clamp(min=1)
    gamma1 = ((residual * valid[:, None]) ** 2).sum((1, 2)) / (cfg.dim ** 2 * pairs)
    targets = ((iou.transpose(1, 2) - cfg.iou_low) / (cfg.iou_high - cfg.iou_low)).clamp(0, 1)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)
    gamma2 = (bce * valid).sum(1) / valid.sum(1).clamp(min=1)
    return (gamma1 + cfg.alpha * gamma2).mean()
