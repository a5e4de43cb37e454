"""CLEAR in eager PyTorch: the twin of `vmr_jax.models.clear` (GloVe text encoder).

The pruned search (evaluation with `clear.search = "pruned"`) scores, query by query,
only the candidates of the node the tree walk chose, as Algorithm 1 reads; eager
PyTorch needs no static shapes for that.
"""

from __future__ import annotations

import torch
from torch import nn

from vmr_jax.layers import moment_map
from vmr_jax.models import clear as flax_clear
from vmr_jax.torch_equivalents import common


def max_pool_map(x):
  """`moment_map.max_pool_map`: `[B, L, D]` -> `[B, N, D]` by a running maximum."""
  rows, running = [x], x
  for k in range(1, x.shape[1]):
    running = torch.maximum(running[:, :-1], x[:, k:])
    rows.append(running)
  return torch.cat(rows, dim=1)


class FineWeights(nn.Module):
  def __init__(self, dim: int, hidden: int):
    super().__init__()
    self.fuse_kernel = nn.Parameter(torch.randn(dim, hidden) / dim ** 0.5)
    self.fuse_bias = nn.Parameter(torch.zeros(hidden))
    self.confidence_kernel = nn.Parameter(torch.randn(hidden, 1) / hidden ** 0.5)
    self.confidence_bias = nn.Parameter(torch.zeros(1))

  def forward(self, moments, queries):
    """`clear.cell_logits`: `[..., K, d]`, `[..., d]` -> `[..., K]`."""
    per_query = queries[..., :, None] * self.fuse_kernel
    hidden = torch.relu(torch.einsum("...kd,...dh->...kh", moments, per_query) + self.fuse_bias)
    return (hidden @ self.confidence_kernel)[..., 0] + self.confidence_bias[0]


class CLEAR(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int):
    super().__init__()
    cfg = self.cfg = config.clear
    self.config, self.num_clips = config, config.data.num_clips
    self.bitcn = common.BiTCN(feature_dim, cfg.hidden, cfg.tcn_layers, cfg.tcn_kernel,
                              dropout=cfg.dropout)
    self.moment_mlp = common.MLP(cfg.hidden, (cfg.hidden, cfg.dim), "relu", "none")
    self.text_encoder = common.text_encoder(config, vocab_size)
    text_width = 2 * config.text.head_hidden if config.text.head else config.text.glove_dim
    self.query_fc = nn.Linear(text_width, cfg.dim)
    self.fine = FineWeights(cfg.dim, cfg.fine_hidden)
    self.anchor_index = torch.as_tensor(flax_clear.anchor_index(self.num_clips,
                                                                cfg.tree_layers))

  def forward(self, batch):
    """-> {"queries" [B, Q, d], "anchors" [B, R, d], "fine_logits" [B, Q, N]}; the
    pruned search in evaluation: -inf outside each query's node, and "node" [B, Q]."""
    cfg = self.cfg
    units = self.bitcn(batch["video_feats"], batch["video_mask"])
    moments = self.moment_mlp(max_pool_map(units))  # [B, N, d]
    _, sentence = self.text_encoder(batch["query_tokens"], batch["query_mask"])
    queries = torch.relu(self.query_fc(sentence))
    anchors = moments[:, self.anchor_index]
    outputs = {"queries": queries, "anchors": anchors}
    if cfg.search == "pruned" and not self.training:
      outputs["fine_logits"], outputs["node"] = self.pruned(moments, queries, anchors)
    else:
      outputs["fine_logits"] = self.fine(moments[:, None], queries)
    return outputs

  def pruned(self, moments, queries, anchors):
    cfg = self.cfg
    similarity = torch.einsum("bqd,brd->bqr", queries, anchors)
    node = torch.as_tensor(flax_clear.tree_search(similarity.numpy(), cfg.tree_layers,
                                                  cfg.mu, cfg.rho))
    in_node = torch.as_tensor(flax_clear.tree_nodes(self.num_clips, cfg.tree_layers))
    logits = torch.full(queries.shape[:2] + moments.shape[1:2], -torch.inf)
    for b in range(queries.shape[0]):
      for q in range(queries.shape[1]):
        cells = torch.nonzero(in_node[node[b, q]])[:, 0]
        logits[b, q, cells] = self.fine(moments[b, cells], queries[b, q])
    return logits, node

  def loss(self, outputs, batch):
    cfg = self.cfg
    spans = moment_map.dense_spans(self.num_clips)
    iou = common.pairwise_iou(common.inclusive_spans_to_times(spans, batch),
                              batch["gt_times"])  # [B, N, Q]
    valid = batch["query_valid"]
    residual = (torch.einsum("brd,bqd->brq", outputs["anchors"], outputs["queries"])
                - cfg.dim * iou[:, self.anchor_index])
    gamma1 = (torch.where(valid[:, None], residual, 0.0) ** 2).sum((1, 2))
    per_query = common.scaled_iou_bce(outputs["fine_logits"], iou.transpose(1, 2),
                                      cfg.iou_low, cfg.iou_high).mean(-1)
    gamma2 = torch.where(valid, per_query, 0.0).sum(1)
    if cfg.loss_reduction == "mean":
      gamma1 = gamma1 / (cfg.dim ** 2 * (valid.sum(1) * residual.shape[1]).clamp(min=1))
      gamma2 = gamma2 / valid.sum(1).clamp(min=1)
    terms = {"gamma1": common.masked_average(gamma1, batch["example_valid"]),
             "gamma2": common.masked_average(gamma2, batch["example_valid"])}
    return terms["gamma1"] + cfg.alpha * terms["gamma2"], terms

  def decode(self, outputs, batch):
    logits = outputs["fine_logits"]
    scores = torch.where(torch.isfinite(logits), torch.sigmoid(logits), -torch.inf)
    times = common.inclusive_spans_to_times(moment_map.dense_spans(self.num_clips), batch)
    return common.top_moments(scores, times, self.config.eval.top_k)
