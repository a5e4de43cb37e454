"""CMHN in eager PyTorch: the layers, sizes and losses of `vmr_jax.models.cmhn` with
the GloVe + BiGRU text encoder (the demo's), for timing only."""

from __future__ import annotations

import torch
from torch import nn

from vmr_jax.models.cmhn import candidate_spans
from vmr_jax.torch_equivalents.common import BiTCN, SentenceGRU, pairwise_iou


def rrelu_mlp(widths):
  layers = []
  for a, b in zip(widths[:-1], widths[1:]):
    layers += [nn.Linear(a, b), nn.RReLU()]
  return nn.Sequential(*layers)


class CMHN(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int, glove_dim: int):
    super().__init__()
    cfg, text = config.cmhn, config.text
    self.cfg, self.num_clips = cfg, config.data.num_clips
    self.input = nn.Linear(feature_dim, cfg.hidden)
    self.tcn = BiTCN(cfg.hidden, cfg.hidden, cfg.tcn_layers, cfg.tcn_kernel)
    self.candidates = nn.ModuleList(nn.Conv1d(cfg.hidden, cfg.hidden, k)
                                    for k in range(1, cfg.max_kernel + 1))
    self.moment_mlp = rrelu_mlp([cfg.hidden, cfg.hidden, cfg.code_bits])
    self.sentence = SentenceGRU(vocab_size, glove_dim, text.head_hidden, text.head_layers)
    self.query_mlp = rrelu_mlp([2 * text.head_hidden, cfg.hidden, cfg.hidden, cfg.code_bits])
    self.register_buffer("spans", torch.as_tensor(
        candidate_spans(self.num_clips, cfg.max_kernel), dtype=torch.float32))

  def forward(self, batch):
    """-> the loss Psi; batch: the numeric arrays of a video-level batch, as tensors."""
    x = self.tcn(self.input(batch["video_feats"]), batch["video_mask"]).transpose(1, 2)
    cands = torch.cat([conv(x) for conv in self.candidates], dim=2).transpose(1, 2)
    h_c = self.moment_mlp(cands)  # [B, N, L]
    h_q = self.query_mlp(self.sentence(batch["query_tokens"], batch["query_mask"]))
    return self.loss(h_c, h_q, batch)

  def loss(self, h_c, h_q, batch):
    cfg = self.cfg
    times = self.spans[None] * (batch["duration"] / self.num_clips)[:, None, None]
    iou = pairwise_iou(times, batch["gt_times"])
    valid = batch["query_valid"].float()
    residual = torch.einsum("bnl,bml->bnm", h_c, h_q) - cfg.code_bits * iou
    gamma1 = ((residual * valid[:, None]) ** 2).sum((1, 2))
    sign = lambda h: torch.where(h >= 0, 1.0, -1.0).detach()
    gamma2 = ((h_c - sign(h_c)) ** 2).sum((1, 2)) + (
        ((h_q - sign(h_q)) * valid[..., None]) ** 2).sum((1, 2))
    gamma3 = (h_c.sum(1) ** 2).sum(-1) + ((h_q * valid[..., None]).sum(1) ** 2).sum(-1)
    return (gamma1 + cfg.alpha * gamma2 + cfg.beta * gamma3).mean()
