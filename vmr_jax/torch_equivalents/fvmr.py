"""FVMR in eager PyTorch: the layers, sizes and losses of `vmr_jax.models.fvmr` (GloVe
+ 2-layer BiLSTM queries, the node BiGRU teacher, the sparse 2D-TAN map), for timing
only. BatchNorm2d normalizes over the whole grid (JAX: over the map's cells)."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from vmr_jax.layers import moment_map
from vmr_jax.models.fvmr import map_layout
from vmr_jax.torch_equivalents.common import packed_rnn, pairwise_iou


def mlp(inputs: int, hidden: int, out: int):
  return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, out))


def sparse_max_pool_map(x, schedule):
  """`[B, L, D]` -> `[B, M, D]`, `moment_map.sparse_max_pool_map` by its schedule."""
  cells = []
  for kernel, stride in schedule:
    count = (x.shape[1] - kernel) // stride + 1
    views = [x[:, k:k + stride * (count - 1) + 1:stride] for k in range(kernel)]
    x = views[0]
    for view in views[1:]:
      x = torch.maximum(x, view)
    cells.append(x)
  return torch.cat(cells, dim=1)


class MapConv(nn.Module):
  """`moment_map.MapConv`: `[N, D, L, L]` -> `[N, features, L, L]`."""

  def __init__(self, inputs: int, features: int, kernel: int, cells):
    super().__init__()
    self.conv = nn.Conv2d(inputs, features, kernel, padding=kernel // 2)
    counts = moment_map.window_counts(cells, kernel)
    self.register_buffer("cells", torch.as_tensor(cells, dtype=torch.float32))
    self.register_buffer("scale", torch.as_tensor(cells / counts.clip(min=1),
                                                  dtype=torch.float32))

  def forward(self, grid):
    return self.conv(grid * self.cells) * self.scale


class Importance(nn.Module):
  def __init__(self, d: int):
    super().__init__()
    self.top, self.low = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
    self.alpha = nn.Linear(2 * d, 1, bias=False)

  def forward(self, top, nodes):
    low = self.low(nodes)
    joint = torch.cat([self.top(top)[..., None, :].expand_as(low), low], dim=-1)
    return self.alpha(torch.tanh(joint))[..., 0]


def masked_softmax(logits, mask):
  weights = torch.softmax(logits.masked_fill(~mask, torch.finfo(logits.dtype).min), -1)
  return weights * mask


class FVMR(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int, glove_dim: int):
    super().__init__()
    cfg, text = config.fvmr, config.text
    self.cfg, self.num_clips = cfg, config.data.num_clips
    self.schedule = moment_map.sparse_schedule(self.num_clips, cfg.scale_layers)
    spans, index, cells = map_layout(self.num_clips, cfg.scale_layers)
    self.register_buffer("spans", torch.as_tensor(spans, dtype=torch.long))
    self.register_buffer("index", torch.as_tensor(index.clip(min=0), dtype=torch.long))
    self.register_buffer("cells", torch.as_tensor(cells[..., None], dtype=torch.float32))
    self.clip_fc = nn.Linear(feature_dim, cfg.video_dim)
    convs, norms, width = [], [], cfg.video_dim
    for kernel in cfg.map_kernels:
      convs.append(MapConv(width, cfg.video_dim, kernel, cells))
      norms.append(nn.BatchNorm2d(cfg.video_dim, momentum=1 - cfg.bn_momentum))
    self.map_convs, self.map_norms = nn.ModuleList(convs), nn.ModuleList(norms)
    self.embedding = nn.Embedding(vocab_size, glove_dim)
    self.lstm = nn.LSTM(glove_dim, text.head_hidden, num_layers=text.head_layers,
                        bidirectional=True, batch_first=True)
    self.node_gru = nn.GRU(glove_dim, cfg.node_hidden, bidirectional=True, batch_first=True)
    self.verb_importance = Importance(2 * cfg.node_hidden)
    self.noun_importance = Importance(2 * cfg.node_hidden)
    self.phi_m = mlp(cfg.video_dim, cfg.mlp_hidden, cfg.dim)
    self.phi_s = mlp(2 * text.head_hidden, cfg.mlp_hidden, cfg.dim)
    self.phi_u = mlp(2 * cfg.node_hidden, cfg.mlp_hidden, cfg.dim)
    self.fuse_conv = MapConv(cfg.dim, cfg.fuse_hidden, cfg.fuse_kernels[0], cells)
    self.fuse_gated_conv = MapConv(cfg.fuse_hidden, 2, cfg.fuse_kernels[1], cells)
    times = spans.astype("float32")
    times[:, 1] += 1
    self.register_buffer("span_units", torch.as_tensor(times))

  def to_grid(self, cells):
    """`[N, M, D]` -> `[N, D, L, L]`."""
    return (cells[:, self.index] * self.cells).permute(0, 3, 1, 2)

  def from_grid(self, grid):
    """`[N, D, L, L]` -> `[N, M, D]`."""
    return grid[:, :, self.spans[:, 0], self.spans[:, 1]].transpose(1, 2)

  def nodes(self, tokens):
    """Word ids `[..., W]` -> final node BiGRU states `[..., Df]`."""
    flat = tokens.reshape(-1, tokens.shape[-1])
    _, h_n = packed_rnn(self.node_gru, self.embedding(flat), flat > 0)
    return torch.cat([h_n[-2], h_n[-1]], dim=-1).reshape(*tokens.shape[:-1], -1)

  def forward(self, batch):
    """-> the loss (Eq. 10); batch: the numeric arrays of a video-level batch."""
    grid = self.to_grid(sparse_max_pool_map(torch.relu(self.clip_fc(batch["video_feats"])),
                                            self.schedule))
    for conv, norm in zip(self.map_convs, self.map_norms):
      grid = torch.tanh(norm(conv(grid))) * conv.cells
    moments = self.phi_m(self.from_grid(grid))  # [B, M, D]
    tokens, mask = batch["query_tokens"], batch["query_mask"]
    b, q, length = tokens.shape
    flat_mask = mask.reshape(b * q, length)
    lengths = flat_mask.sum(1)
    words, _ = packed_rnn(self.lstm, self.embedding(tokens.reshape(b * q, length)),
                          flat_mask)
    last = (lengths.clamp(min=1) - 1)[:, None, None].expand(-1, 1, words.shape[-1])
    sentence = words[:, 0] + words.gather(1, last)[:, 0]
    queries = self.phi_s(sentence).reshape(b, q, -1)
    p = torch.einsum("bmd,bqd->bqm", moments, queries)
    semantic = self.phi_u(self.semantic_feature(batch)).reshape(b, q, -1)
    fused = (moments[:, None] * semantic[:, :, None]).reshape(b * q, *moments.shape[1:])
    h = torch.relu(self.fuse_conv(self.to_grid(fused)))
    gated = self.fuse_gated_conv(h)
    logits = gated[:, 0] * torch.sigmoid(gated[:, 1])
    q_logits = logits[:, self.spans[:, 0], self.spans[:, 1]].reshape(b, q, -1)
    return self.loss(p, q_logits, batch)

  def semantic_feature(self, batch):
    """Eq. 3-5 -> u `[B Q, Df]`."""
    b, q = batch["query_tokens"].shape[:2]
    verbs, nouns = batch["verb_tokens"], batch["noun_tokens"]
    sentence = self.nodes(batch["query_tokens"] * batch["query_mask"]).reshape(b * q, -1)
    g_v = self.nodes(verbs).reshape(b * q, verbs.shape[2], -1)
    g_n = self.nodes(nouns).reshape(b * q, nouns.shape[2], -1)
    verb_valid = (verbs[..., 0] > 0).reshape(b * q, -1)
    noun_valid = (nouns[..., 0] > 0).reshape(b * q, -1)
    links = batch["role_edges"].reshape(b * q, *batch["role_edges"].shape[2:]) & noun_valid[:, None]
    verb_alpha = self.verb_importance(sentence, g_v)
    summary = torch.einsum("nk,nkd->nd", masked_softmax(verb_alpha, verb_valid), g_v)
    noun_alpha = self.noun_importance(summary, g_n)
    weights = masked_softmax(
        torch.cat([verb_alpha[..., None], noun_alpha[:, None].expand_as(links)], -1),
        torch.cat([verb_valid[..., None], links], -1))
    phrases = weights[..., :1] * g_v + torch.einsum("nvk,nkd->nvd", weights[..., 1:], g_n)
    mean = (phrases * verb_valid[..., None]).sum(1) / verb_valid.sum(1, keepdim=True).clamp(min=1)
    return sentence * mean

  def loss(self, p, q, batch):
    cfg = self.cfg
    times = self.span_units[None] * (batch["duration"] / self.num_clips)[:, None, None]
    iou = pairwise_iou(times, batch["gt_times"]).transpose(1, 2)  # [B, Q, M]
    targets = ((iou - cfg.iou_low) / (cfg.iou_high - cfg.iou_low)).clamp(0, 1)
    bce = lambda x: F.binary_cross_entropy_with_logits(x, targets, reduction="none").mean(-1)
    teacher = torch.softmax(q / cfg.temperature, -1)
    distill = -(teacher * torch.log_softmax(p / cfg.temperature, -1)).sum(-1)
    warm = (batch["epoch"] >= cfg.distill_warmup_epochs)[:, None].float()
    per_pair = bce(p) + bce(q) + cfg.distill_weight * warm * distill
    valid = batch["query_valid"].float()
    return (per_pair * valid).sum() / valid.sum().clamp(min=1)
