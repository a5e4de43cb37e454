"""FVMR in eager PyTorch: the twin of `vmr_jax.models.fvmr` (GloVe + BiLSTM queries,
the node BiGRU teacher, the sparse 2D-TAN map convolved on its cells)."""

from __future__ import annotations

import torch
from torch import nn

from vmr_jax.layers import moment_map
from vmr_jax.models import fvmr as flax_fvmr
from vmr_jax.torch_equivalents import common
from vmr_jax.text.words import PAD_ID
import torch.nn.functional as F


def sparse_max_pool_map(x, scale_layers):
  """`moment_map.sparse_max_pool_map`: `[B, L, D]` -> `[B, M, D]`."""
  cells = []
  for kernel, stride in moment_map.sparse_schedule(x.shape[1], scale_layers):
    count = (x.shape[1] - kernel) // stride + 1
    views = [x[:, k:k + stride * (count - 1) + 1:stride] for k in range(kernel)]
    x = views[0]
    for view in views[1:]:
      x = torch.maximum(x, view)
    cells.append(x)
  return torch.cat(cells, dim=1)


class MapConv(nn.Module):
  """`moment_map.MapConv` on the cells: `[N, M, D]` -> `[N, M, features]`; params in
  Flax's layout (`kernel [k, k, D, features]`, `bias`)."""

  def __init__(self, inputs: int, features: int, kernel: int, neighbours, normalize=True):
    super().__init__()
    self.kernel = nn.Parameter(torch.randn(kernel, kernel, inputs, features)
                               / (kernel * kernel * inputs) ** 0.5)
    self.bias = nn.Parameter(torch.zeros(features))
    self.neighbours = torch.as_tensor(neighbours, dtype=torch.long)
    counts = (self.neighbours < len(neighbours)).sum(-1).clamp(min=1)
    self.scale = 1.0 / counts.float() if normalize else None

  def forward(self, cells):
    padded = torch.cat([cells, torch.zeros_like(cells[:, :1])], dim=1)
    kernel = self.kernel.reshape(-1, *self.kernel.shape[2:])
    out = self.bias
    for position in range(kernel.shape[0]):
      column = self.neighbours[:, position]
      if (column < len(self.neighbours)).any():
        out = out + padded[:, column] @ kernel[position]
    return out if self.scale is None else out * self.scale[:, None]


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
    self.config, self.num_clips = config, config.data.num_clips
    self.spans = moment_map.sparse_spans(self.num_clips, cfg.scale_layers)
    neighbours = lambda k: moment_map.cell_neighbours(self.num_clips, self.spans, k)
    self.clip_fc = nn.Linear(feature_dim, cfg.video_dim)
    for i, kernel in enumerate(cfg.map_kernels):
      self.add_module(f"map_conv_{i}", MapConv(cfg.video_dim, cfg.video_dim, kernel,
                                               neighbours(kernel)))
      self.add_module(f"map_norm_{i}", MaskedBatchNorm(cfg.video_dim, cfg.bn_momentum))
    phi = lambda inputs: common.MLP(inputs, (cfg.mlp_hidden, cfg.dim), "relu", "none")
    self.text_encoder = common.text_encoder(config, vocab_size)
    self.phi_m, self.phi_s = phi(cfg.video_dim), phi(2 * config.text.head_hidden)
    self.phi_u = phi(2 * cfg.node_hidden)
    self.node_gru = common.rnn("gru", config.text.glove_dim, cfg.node_hidden)
    self.semantic_attention = SemanticGuidedAttention(2 * cfg.node_hidden)
    self.fuse_conv = MapConv(cfg.dim, cfg.fuse_hidden, cfg.fuse_kernels[0],
                             neighbours(cfg.fuse_kernels[0]), normalize=False)
    self.fuse_gated_conv = MapConv(cfg.fuse_hidden, 2, cfg.fuse_kernels[1],
                                   neighbours(cfg.fuse_kernels[1]), normalize=False)

  def forward(self, batch):
    """-> {"p_logits" [B, Q, M]}, and the teacher's "q_logits" in training."""
    cfg = self.cfg
    cells = sparse_max_pool_map(torch.relu(self.clip_fc(batch["video_feats"])),
                                cfg.scale_layers)
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
    return common.inclusive_spans_to_times(self.spans, batch)

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
