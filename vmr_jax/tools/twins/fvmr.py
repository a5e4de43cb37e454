"""FVMR in eager PyTorch: the twin of `vmr_jax.models.fvmr` (GloVe + BiLSTM queries,
the node BiGRU teacher, the sparse 2D-TAN map built and convolved on the dense grid, as 2D-TAN does)."""

from __future__ import annotations

import torch
from torch import nn

from vmr_jax.tools.twins import common
from data_pipelines.words import PAD_ID
import torch.nn.functional as F


def sparse_map(x, scale_layers):
  """2D-TAN's `SparsePropMaxPool` (github.com/microsoft/2D-TAN, written from its
  algorithm, not from `vmr_jax.layers.moment_map`): clips `[B, T, D]` -> the dense
  map `[B, T, T, D]` and its cell mask `[T, T]`. Scale 0 pools (1, 1) then (2, 1)
  per layer, every later scale (3, 2) then (2, 1); layer i of a scale at total
  stride s and offset a puts pooled clip n at cell (n s, n s + a + i s); a scale adds
  s (layers + 1) to the offset."""
  b, t, d = x.shape
  grid, mask = x.new_zeros(b, t, t, d), torch.zeros(t, t, dtype=torch.bool)
  offset, stride, h = 0, 1, x
  for scale, layers in enumerate(scale_layers):
    for i in range(layers):
      kernel, step = ((1, 1) if scale == 0 else (3, 2)) if i == 0 else (2, 1)
      h = F.max_pool1d(h.transpose(1, 2), kernel, step).transpose(1, 2)
      stride *= step
      starts = torch.arange(h.shape[1]) * stride
      ends = starts + offset + i * stride
      grid[:, starts, ends], mask[starts, ends] = h, True
    offset += stride * (layers + 1)
  return grid, mask


class MapConv(nn.Module):
  """2D-TAN's masked map convolution on the dense (start, end) grid: the cells
  `[N, M, D]` at `cells` (`[M, 2]` grid positions) placed on a zero grid, a
  `kernel`-square convolution padded to keep the size, read back at the cells; with
  `normalize`, divided by the number of cells in each window (2D-TAN's
  `masked_weight`). Params in Flax's layout (`kernel [k, k, D, features]`, `bias`)."""

  def __init__(self, inputs: int, features: int, kernel: int, cells, num_clips: int,
               normalize=True):
    super().__init__()
    self.kernel = nn.Parameter(torch.randn(kernel, kernel, inputs, features)
                               / (kernel * kernel * inputs) ** 0.5)
    self.bias = nn.Parameter(torch.zeros(features))
    self.cells, self.num_clips, self.normalize = cells, num_clips, normalize
    mask = torch.zeros(1, 1, num_clips, num_clips)
    mask[0, 0, cells[:, 0], cells[:, 1]] = 1.0
    counts = F.conv2d(mask, torch.ones(1, 1, kernel, kernel), padding=kernel // 2)
    self.scale = 1.0 / counts[0, 0, cells[:, 0], cells[:, 1]]

  def forward(self, cells):
    n, _, d = cells.shape
    grid = cells.new_zeros(n, d, self.num_clips, self.num_clips)
    grid[:, :, self.cells[:, 0], self.cells[:, 1]] = cells.transpose(1, 2)
    out = F.conv2d(grid, self.kernel.permute(3, 2, 0, 1), self.bias,
                   padding=self.kernel.shape[0] // 2)
    out = out[:, :, self.cells[:, 0], self.cells[:, 1]].transpose(1, 2)
    return out * self.scale.to(out.dtype)[:, None] if self.normalize else out


class MaskedBatchNorm(nn.Module):
  """`flax.linen.BatchNorm` over all but the last axis with a mask: batch statistics
  of the masked rows in training (E[x^2] - E[x]^2), running averages
  `mean = m mean + (1 - m) batch` otherwise."""

  def __init__(self, features: int, momentum: float, epsilon: float = 1e-5):
    super().__init__()
    self.momentum, self.epsilon = momentum, epsilon
    self.scale, self.bias = nn.Parameter(torch.ones(features)), nn.Parameter(torch.zeros(features))
    self.register_buffer("mean", torch.zeros(features))
    self.register_buffer("var", torch.ones(features))

  def forward(self, x, mask):
    if self.training:
      weights = mask.to(x.dtype).expand_as(x)
      count = weights.sum(tuple(range(x.dim() - 1))).clamp(min=1)
      mean = (x * weights).sum(tuple(range(x.dim() - 1))) / count
      var = ((x * x * weights).sum(tuple(range(x.dim() - 1))) / count - mean ** 2).clamp(min=0)
      with torch.no_grad():
        self.mean.mul_(self.momentum).add_((1 - self.momentum) * mean)
        self.var.mul_(self.momentum).add_((1 - self.momentum) * var)
    else:
      mean, var = self.mean, self.var
    return (x - mean) * (torch.rsqrt(var + self.epsilon) * self.scale) + self.bias


class RoleImportance(nn.Module):
  """`fvmr.RoleImportance` (Eq. 3)."""

  def __init__(self, d: int):
    super().__init__()
    self.top, self.low = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
    self.alpha = nn.Linear(2 * d, 1, bias=False)

  def forward(self, top, nodes):
    low = self.low(nodes)
    joint = torch.cat([self.top(top)[..., None, :].expand_as(low), low], dim=-1)
    return self.alpha(torch.tanh(joint))[..., 0]


class SemanticGuidedAttention(nn.Module):
  """`fvmr.SemanticGuidedAttention` (Eq. 3-5)."""

  def __init__(self, d: int):
    super().__init__()
    self.verb_importance, self.noun_importance = RoleImportance(d), RoleImportance(d)

  def forward(self, sentence, verbs, nouns, verb_valid, noun_valid, edges):
    verb_alpha = self.verb_importance(sentence, verbs)
    summary = torch.einsum("...k,...kd->...d", common.masked_softmax(verb_alpha, verb_valid),
                           verbs)
    noun_alpha = self.noun_importance(summary, nouns)
    links = edges & noun_valid[..., None, :]
    weights = common.masked_softmax(
        torch.cat([verb_alpha[..., None], noun_alpha[..., None, :].expand_as(links)], -1),
        torch.cat([verb_valid[..., None], links], -1))
    phrases = weights[..., :1] * verbs + torch.einsum("...vn,...nd->...vd", weights[..., 1:],
                                                      nouns)
    return sentence * common.masked_mean(phrases, verb_valid)


def first_plus_last(words, mask):
  """`fvmr.first_plus_last`: `[..., L, D]`, `[..., L]` -> `[..., D]`."""
  last = (mask.sum(-1) - 1).clamp(min=0)[..., None, None].expand(*words.shape[:-2], 1,
                                                                  words.shape[-1])
  return words[..., 0, :] + torch.gather(words, -2, last)[..., 0, :]


class FVMR(nn.Module):
  def __init__(self, config, feature_dim: int, vocab_size: int):
    super().__init__()
    cfg = self.cfg = config.fvmr
    pool = cfg.frame_pool if cfg.frame_layer == "2dtan" else 1
    self.config, self.num_clips = config, config.data.num_clips // pool
    _, mask = sparse_map(torch.zeros(1, self.num_clips, 1), cfg.scale_layers)
    self.spans = torch.nonzero(mask)  # [M, 2] the cells, row-major
    map_conv = lambda *args, **kwargs: MapConv(*args, self.spans, self.num_clips, **kwargs)
    self.clip_fc = nn.Linear(feature_dim, cfg.video_dim)
    for i, kernel in enumerate(cfg.map_kernels):
      self.add_module(f"map_conv_{i}", map_conv(cfg.video_dim, cfg.video_dim, kernel))
      self.add_module(f"map_norm_{i}", MaskedBatchNorm(cfg.video_dim, cfg.bn_momentum))
    phi = lambda inputs: common.MLP(inputs, (cfg.mlp_hidden, cfg.dim), "relu", "none")
    self.text_encoder = common.text_encoder(config, vocab_size)
    self.phi_m, self.phi_s = phi(cfg.video_dim), phi(2 * config.text.head_hidden)
    self.phi_u = phi(2 * cfg.node_hidden)
    self.node_gru = common.rnn("gru", config.text.glove_dim, cfg.node_hidden)
    self.semantic_attention = SemanticGuidedAttention(2 * cfg.node_hidden)
    self.fuse_conv = map_conv(cfg.dim, cfg.fuse_hidden, cfg.fuse_kernels[0], normalize=False)
    self.fuse_gated_conv = map_conv(cfg.fuse_hidden, 2, cfg.fuse_kernels[1], normalize=False)

  def forward(self, batch):
    """-> {"p_logits" [B, Q, M]}, and the teacher's "q_logits" in training."""
    cfg = self.cfg
    feats = batch["video_feats"]
    if cfg.frame_layer == "2dtan":  # 2D-TAN's FrameAvgPool on normalized features
      feats = F.normalize(feats, dim=-1)
    clips = torch.relu(self.clip_fc(feats))
    if cfg.frame_layer == "2dtan":
      clips = F.avg_pool1d(clips.transpose(1, 2), cfg.frame_pool, cfg.frame_pool).transpose(1, 2)
    grid, _ = sparse_map(clips, cfg.scale_layers)
    cells = grid[:, self.spans[:, 0], self.spans[:, 1]]  # [B, M, D_v]
    real = batch["example_valid"][:, None, None]
    for i in range(len(cfg.map_kernels)):
      cells = getattr(self, f"map_conv_{i}")(cells)
      cells = torch.tanh(getattr(self, f"map_norm_{i}")(cells, real))
    moments = self.phi_m(cells)
    words, _ = self.text_encoder(batch["query_tokens"], batch["query_mask"])
    queries = self.phi_s(first_plus_last(words, batch["query_mask"]))
    outputs = {"p_logits": torch.einsum("bmd,bqd->bqm", moments, queries)}
    if self.training:
      semantic = self.phi_u(self.semantic_feature(batch))
      fused = moments[:, None] * semantic[:, :, None]
      b, q = fused.shape[:2]
      h = torch.relu(self.fuse_conv(fused.reshape(b * q, *fused.shape[2:])))
      gated = self.fuse_gated_conv(h)
      outputs["q_logits"] = (gated[..., 0] * torch.sigmoid(gated[..., 1])).reshape(b, q, -1)
    return outputs

  def nodes(self, tokens, mask):
    """Word ids `[..., W]` -> final node BiGRU states `[..., Df]`."""
    vectors = self.text_encoder.embed(tokens)
    _, final = common.packed_rnn(self.node_gru, vectors.reshape(-1, *vectors.shape[-2:]),
                                 mask.reshape(-1, mask.shape[-1]))
    return final.reshape(*tokens.shape[:-1], -1)

  def semantic_feature(self, batch):
    verbs, nouns = batch["verb_tokens"], batch["noun_tokens"]
    return self.semantic_attention(
        self.nodes(batch["query_tokens"], batch["query_mask"]),
        self.nodes(verbs, verbs != PAD_ID), self.nodes(nouns, nouns != PAD_ID),
        verbs[..., 0] != PAD_ID, nouns[..., 0] != PAD_ID, batch["role_edges"])

  def candidates(self, batch):
    """Cell (i, j) of the L-clip map: [i T/L, (j + 1) T/L) seconds."""
    spans = self.spans.to(batch["duration"].dtype) + torch.tensor([0.0, 1.0])
    return spans[None] * (batch["duration"] / self.num_clips)[:, None, None]

  def loss(self, outputs, batch):
    cfg = self.cfg
    iou = common.pairwise_iou(self.candidates(batch), batch["gt_times"]).transpose(1, 2)
    pairs = batch["query_valid"] & batch["example_valid"][:, None]
    p, q = outputs["p_logits"], outputs["q_logits"]
    bce = lambda x: common.scaled_iou_bce(x, iou, cfg.iou_low, cfg.iou_high).mean(-1)
    distill = distillation(p, q.detach(), cfg.temperature, cfg.distill_loss)
    warm = (batch["epoch"] >= cfg.distill_warmup_epochs)[:, None]
    terms = {"bce_p": common.masked_average(bce(p), pairs),
             "bce_q": common.masked_average(bce(q), pairs),
             "distill": common.masked_average(distill, pairs)}
    total = (terms["bce_p"] + terms["bce_q"] + cfg.distill_weight
             * common.masked_average(torch.where(warm, distill, 0.0), pairs))
    return total, terms

  def decode(self, outputs, batch):
    return common.top_moments(torch.sigmoid(outputs["p_logits"]), self.candidates(batch),
                              self.config.eval.top_k)


def distillation(student, teacher, temperature: float, reading: str):
  """`vmr_jax.layers.losses.distillation`."""
  student, teacher = student / temperature, teacher / temperature
  if reading == "sigmoid_bce":
    return F.binary_cross_entropy_with_logits(student, torch.sigmoid(teacher),
                                              reduction="none").mean(-1)
  target, log_p = teacher.softmax(-1), student.log_softmax(-1)
  if reading == "softmax_ce":
    return -(target * log_p).sum(-1)
  log_not_p = torch.log1p(-log_p.exp().clamp(max=1 - 1e-7))
  return -(target * log_p + (1 - target) * log_not_p).mean(-1)
