"""CMHN in eager PyTorch: the twin of `vmr_jax.models.cmhn` (GloVe text encoder), the
paper's reading (`cmhn.reading = "paper"`; the released one's twin is `cmhn_released`).

Candidates (Eq. 2): one convolution per window size `cmhn.kernels` at its stride
`cmhn.strides`, each size followed by its tail window (`common.window_spans`), laid
out here without the Flax model's helpers.
"""

from __future__ import annotations

import torch
from torch import nn

from vmr_jax.tools.twins import common


def sign(h):
  return torch.where(h >= 0, 1.0, -1.0).to(h.dtype).detach()


class CMHN(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int):
    super().__init__()
    cfg = self.cfg = config.cmhn
    self.config = config
    self.input = nn.Linear(feature_dim, cfg.hidden)
    self.bitcn = common.BiTCN(cfg.hidden, cfg.hidden, cfg.tcn_layers, cfg.tcn_kernel,
                              cfg.causal, cfg.dropout)
    if len(cfg.kernels) != len(cfg.strides):
      raise ValueError(f"{len(cfg.kernels)} cmhn.kernels but {len(cfg.strides)} strides")
    self.kernels = (tuple(int(k) for k in cfg.kernels), tuple(int(s) for s in cfg.strides))
    # The paper's reading: every size has its tail window (`common.window_conv` adds it).
    self.spans = common.window_spans(config.data.num_clips, *self.kernels, tail=True)
    common.add_window_convs(self, "candidates", cfg.hidden, cfg.hidden, *self.kernels)
    self.moment_mlp = common.MLP(cfg.hidden, (cfg.hidden, cfg.code_bits),
                                 last_activation=cfg.final_activation)
    self.text_encoder = common.text_encoder(config, vocab_size)
    text_width = 2 * config.text.head_hidden if config.text.head else config.text.glove_dim
    self.query_mlp = common.MLP(text_width, (cfg.hidden, cfg.hidden, cfg.code_bits),
                                last_activation=cfg.final_activation)

  def forward(self, batch):
    """-> {"moment_codes": H_C [B, N, L], "query_codes": H_Q [B, Q, L]}."""
    x = self.bitcn(self.input(batch["video_feats"]), batch["video_mask"])
    candidates = common.window_conv(self, x, "candidates", *self.kernels)
    _, sentence = self.text_encoder(batch["query_tokens"], batch["query_mask"])
    codes = self.moment_mlp(candidates), self.query_mlp(sentence)
    if self.cfg.code_scale == "l2":
      codes = [self.cfg.code_bits ** 0.5 * common.l2_normalize(h) for h in codes]
    return dict(zip(("moment_codes", "query_codes"), codes))

  def candidates(self, batch):
    return common.clip_spans_to_times(self.spans, batch["video_mask"], batch["duration"])

  def loss(self, outputs, batch):
    cfg = self.cfg
    h_c, h_q = outputs["moment_codes"], outputs["query_codes"]
    times, cand_valid = self.candidates(batch)
    query_valid = batch["query_valid"]
    iou = common.pairwise_iou(times, batch["gt_times"])
    pair_mask = cand_valid[:, :, None] & query_valid[:, None, :]
    c, q = h_c, h_q
    if cfg.similarity_codes == "binary":
      c, q = h_c + (sign(h_c) - h_c).detach(), h_q + (sign(h_q) - h_q).detach()
    residual = torch.einsum("bnl,bml->bnm", c, q) - cfg.code_bits * iou
    gamma1 = (torch.where(pair_mask, residual, 0.0) ** 2).sum((1, 2))
    quantization = lambda h, v: (torch.where(v[..., None], h - sign(h), 0.0) ** 2).sum((1, 2))
    balance = lambda h, v: (torch.where(v[..., None], h, 0.0).sum(1) ** 2).sum(-1)
    gamma2 = [quantization(h_c, cand_valid), quantization(h_q, query_valid)]
    gamma3 = [balance(h_c, cand_valid), balance(h_q, query_valid)]
    if cfg.loss_reduction == "mean":
      count = lambda m: m.flatten(1).sum(1).clamp(min=1).to(h_c.dtype)
      codes = (count(cand_valid), count(query_valid))
      gamma1 = gamma1 / (cfg.code_bits ** 2 * count(pair_mask))
      gamma2 = [g / (cfg.code_bits * n) for g, n in zip(gamma2, codes)]
      gamma3 = [g / (cfg.code_bits * n ** 2) for g, n in zip(gamma3, codes)]
    terms = {"gamma1": gamma1, "gamma2": sum(gamma2), "gamma3": sum(gamma3)}
    terms = {k: common.masked_average(v, batch["example_valid"]) for k, v in terms.items()}
    return terms["gamma1"] + cfg.alpha * terms["gamma2"] + cfg.beta * terms["gamma3"], terms

  def decode(self, outputs, batch):
    h_c, h_q = outputs["moment_codes"], outputs["query_codes"]
    times, cand_valid = self.candidates(batch)
    distance = 0.5 * (h_c.shape[-1] - torch.einsum("bnl,bml->bnm", sign(h_c), sign(h_q)))
    cosine = torch.einsum("bnl,bml->bnm", common.l2_normalize(h_c), common.l2_normalize(h_q))
    score = torch.where(cand_valid[:, :, None], -distance + 0.25 * cosine, -torch.inf)
    return common.top_moments(score.transpose(1, 2), times, self.config.eval.top_k)
