"""PyTorch layers the equivalents share: Bi-TCN, GloVe + BiGRU sentences, attention
and Transformer layers, IoU."""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


class BiTCN(nn.Module):
  """`vmr_jax.layers.bitcn.BiTCN` (non-causal): `[B, T, D]`, `[B, T]` -> `[B, T, H]`."""

  def __init__(self, inputs: int, features: int, num_layers: int, kernel_size: int):
    super().__init__()
    self.convs = nn.ModuleList(
        nn.Conv1d(inputs if i == 0 else features, features, kernel_size, dilation=2 ** i,
                  padding=(kernel_size - 1) * 2 ** i // 2)
        for i in range(num_layers))

  def forward(self, x, mask):
    keep = mask.float()[:, None]
    x = x.transpose(1, 2)
    for conv in self.convs:
      x = torch.relu(conv(x * keep))
    return (x * keep).transpose(1, 2)


def packed_rnn(rnn: nn.Module, x, mask):
  """A batch-first (bi)directional `rnn` over `x [B, L, D]` packed by `mask [B, L]`:
  (outputs `[B, L, H']`, zero past each length; `h_n`), as `vmr_jax.layers.rnn.BiRNN`."""
  lengths = mask.sum(1).clamp(min=1)
  packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                             enforce_sorted=False)
  outputs, h_n = rnn(packed)
  outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True,
                                                total_length=x.shape[1])
  return outputs, h_n


class SentenceGRU(nn.Module):
  """Word vectors + BiGRU (the GloVe + bigru text encoder): tokens `[..., W]`, mask
  `[..., W]` -> the last states of both directions `[..., 2 hidden]`, or with
  `words=True` every word's output `[..., W, 2 hidden]`."""

  def __init__(self, vocab_size: int, glove_dim: int, hidden: int, layers: int):
    super().__init__()
    self.embedding = nn.Embedding(vocab_size, glove_dim)
    self.gru = nn.GRU(glove_dim, hidden, num_layers=layers, bidirectional=True,
                      batch_first=True)

  def forward(self, tokens, mask, words: bool = False):
    *lead, length = tokens.shape
    outputs, h_n = packed_rnn(self.gru, self.embedding(tokens.reshape(-1, length)),
                              mask.reshape(-1, length))
    if words:
      return outputs.reshape(*lead, length, -1)
    return torch.cat([h_n[-2], h_n[-1]], dim=-1).reshape(*lead, -1)


class Attention(nn.Module):
  """Multi-head attention, dot-product or cosine / learned sigma, with a key mask."""

  def __init__(self, dim, heads, cosine=False, sigma=0.1, dropout=0.0):
    super().__init__()
    self.heads, self.cosine = heads, cosine
    self.query, self.key, self.value, self.output = (nn.Linear(dim, dim) for _ in range(4))
    self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma))) if cosine else None
    self.dropout = nn.Dropout(dropout)

  def forward(self, x, context, mask):
    b, lq, d = x.shape
    split = lambda y: y.view(b, y.shape[1], self.heads, -1).transpose(1, 2)
    q, k, v = split(self.query(x)), split(self.key(context)), split(self.value(context))
    if self.cosine:
      logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-1, -2)
      logits = logits / self.log_sigma.exp()
    else:
      logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    logits = logits.masked_fill(~mask[:, None, None], torch.finfo(logits.dtype).min)
    weights = self.dropout(logits.softmax(-1))
    return self.output((weights @ v).transpose(1, 2).reshape(b, lq, d))


def mlp(dims):
  layers = []
  for a, b in zip(dims[:-1], dims[1:]):
    layers += [nn.Linear(a, b), nn.ReLU()]
  return nn.Sequential(*layers[:-1])


class GatedCrossAttention(nn.Module):
  """`vmr_jax.layers.attention.GatedCrossAttention` (FIAN's CGA, Eq. 4-6)."""

  def __init__(self, dim, heads, dropout=0.0):
    super().__init__()
    self.attention = Attention(dim, heads, dropout=dropout)
    self.query_proj = nn.Linear(dim, dim, bias=False)
    self.attended_proj = nn.Linear(dim, dim, bias=False)
    self.gate_bias, self.info_bias = nn.Parameter(torch.zeros(dim)), nn.Parameter(torch.zeros(dim))

  def forward(self, x, context, mask):
    mixed = self.query_proj(x) + self.attended_proj(self.attention(x, context, mask))
    return torch.sigmoid(mixed + self.gate_bias) * (mixed + self.info_bias)


class TransformerLayer(nn.Module):
  """`vmr_jax.layers.attention.TransformerLayer`, `gated` included."""

  def __init__(self, dim, heads, mlp_dim, dropout, gated=False):
    super().__init__()
    self.attention = (GatedCrossAttention if gated else Attention)(dim, heads, dropout=dropout)
    self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
    self.ffn, self.dropout = mlp([dim, mlp_dim, dim]), nn.Dropout(dropout)

  def forward(self, x, mask, context=None, context_mask=None):
    if context is None:
      context, context_mask = x, mask
    x = self.norm1(x + self.dropout(self.attention(x, context, context_mask)))
    return self.norm2(x + self.dropout(self.ffn(x)))


def pairwise_iou(a, b):
  """`[B, N, 2]`, `[B, M, 2]` -> `[B, N, M]` temporal IoU (0 for empty unions)."""
  inter = (torch.minimum(a[:, :, None, 1], b[:, None, :, 1])
           - torch.maximum(a[:, :, None, 0], b[:, None, :, 0])).clamp(min=0)
  union = (a[:, :, None, 1] - a[:, :, None, 0]) + (b[:, None, :, 1] - b[:, None, :, 0]) - inter
  return torch.where(union > 0, inter / union.clamp(min=1e-9), torch.zeros_like(inter))
