"""CLEAR in eager PyTorch: the twin of `vmr_jax.models.clear` (GloVe text encoder).

The pruned search (evaluation with `clear.search = "pruned"`) scores, query by query,
only the candidates of the node the tree walk chose, as Algorithm 1 reads; eager
PyTorch needs no static shapes for that.

The moment map's span order, the anchors and nodes of the semantic tree (Eq. 2) and
the tree walk of Algorithm 1 are written here again from their definitions (the
`vmr_jax.models.clear` and `vmr_jax.layers.moment_map` docstrings), not imported: a
twin sharing a helper with its model would share its bugs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vmr_jax.tools.twins import common


def packed_index(num_clips: int, start: int, end: int) -> int:
  """The packed index of the inclusive span (start, end): spans ordered by length,
  then start, so the k + 1 clips long (i, i + k) comes after the spans of the k
  shorter lengths, L + (L - 1) + ... + (L - k + 1) = k L - k (k - 1) / 2 of them."""
  if not 0 <= start <= end < num_clips:
    raise ValueError(f"no span ({start}, {end}) in a map of {num_clips} clips")
  k = end - start
  return k * num_clips - k * (k - 1) // 2 + start


def dense_spans(num_clips: int) -> np.ndarray:
  """`[N, 2]` inclusive (start, end) clip spans of the dense map, N = L (L + 1) / 2,
  in packed order (by length, then start)."""
  spans = np.zeros((num_clips * (num_clips + 1) // 2, 2), dtype=np.int32)
  for start in range(num_clips):
    for end in range(start, num_clips):
      spans[packed_index(num_clips, start, end)] = (start, end)
  return spans


def tree_anchors(num_clips: int, num_layers: int) -> list[tuple[int, int]]:
  """Eq. 2's R = 2P - 1 anchor spans (inclusive): the root (0, L - 1), then per layer
  l = 1..P-1 the left anchor (0, L - 1 - l) and the right one, the unit (L - l, L - l)."""
  if num_layers < 1 or num_clips < num_layers:
    raise ValueError(f"a {num_layers}-layer tree needs 1 <= P <= L = {num_clips} clips")
  anchors = [(0, num_clips - 1)]
  for layer in range(1, num_layers):
    anchors += [(0, num_clips - 1 - layer), (num_clips - layer, num_clips - layer)]
  return anchors


def anchor_index(num_clips: int, num_layers: int) -> list[int]:
  """`[R]` packed index of each anchor."""
  return [packed_index(num_clips, i, j) for i, j in tree_anchors(num_clips, num_layers)]


def node_cells(num_clips: int, num_layers: int) -> list[list[int]]:
  """The packed candidates of each tree node, nodes in id order: the root (every
  span), then per layer l: left(l) = the spans inside the left anchor (ending at or
  before unit L - 1 - l), right(l) = the unit (L - l, L - l), between(l) = the spans
  ending at unit L - l that start earlier."""
  tree_anchors(num_clips, num_layers)  # checks the sizes
  spans = [(int(i), int(j)) for i, j in dense_spans(num_clips)]
  nodes = [list(range(len(spans)))]
  for layer in range(1, num_layers):
    unit = num_clips - layer
    nodes.append([n for n, (i, j) in enumerate(spans) if j <= unit - 1])
    nodes.append([packed_index(num_clips, unit, unit)])
    nodes.append([n for n, (i, j) in enumerate(spans) if j == unit and i < unit])
  return nodes


def walk_tree(similarity, num_layers: int, mu: float, rho: float) -> int:
  """Algorithm 1's coarse step for one query, the reading of `clear.tree_search`:
  `similarity [R]` (the query with each anchor, root first, then (left, right) per
  layer) -> the chosen node (0 the root; layer l: 3l - 2 left, 3l - 1 right, 3l
  between). From the root, at each layer with x the current node's anchor and y, z
  its left and right children's: stop where neither child beats x; else with
  eta = (z - y) / |y|, stop at the right leaf if eta > rho, descend left if
  eta <= mu (the walk ends there at the last layer), else stop at between."""
  node, current = 0, similarity[0]
  for layer in range(1, num_layers):
    left, right = similarity[2 * layer - 1], similarity[2 * layer]
    if not torch.maximum(left, right) > current:
      break
    eta = (right - left) / torch.clamp(left.abs(), min=1e-12)
    if eta > rho:
      node = 3 * layer - 1
      break
    if not eta <= mu:
      node = 3 * layer
      break
    node, current = 3 * layer - 2, left
  return node


def max_pool_map(x):
  """`[B, L, D]` -> `[B, N, D]`: the maximum over clips i..j of each span (i, j), in
  packed order, by a running maximum over the lengths."""
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
    self.anchor_index = torch.as_tensor(anchor_index(self.num_clips, cfg.tree_layers))
    self.node_cells = [torch.as_tensor(c, dtype=torch.long)
                       for c in node_cells(self.num_clips, cfg.tree_layers)]

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
    node = torch.zeros(queries.shape[:2], dtype=torch.long)
    logits = torch.full(queries.shape[:2] + moments.shape[1:2], -torch.inf,
                        dtype=moments.dtype)
    for b in range(queries.shape[0]):
      for q in range(queries.shape[1]):
        node[b, q] = walk_tree(similarity[b, q], cfg.tree_layers, cfg.mu, cfg.rho)
        cells = self.node_cells[node[b, q]]
        logits[b, q, cells] = self.fine(moments[b, cells], queries[b, q])
    return logits, node

  def loss(self, outputs, batch):
    cfg = self.cfg
    spans = dense_spans(self.num_clips)
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
    times = common.inclusive_spans_to_times(dense_spans(self.num_clips), batch)
    return common.top_moments(scores, times, self.config.eval.top_k)
