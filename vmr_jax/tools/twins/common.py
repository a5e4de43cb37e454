"""PyTorch twins of the shared Flax blocks (`vmr_jax.layers`, `vmr_jax.text.encoders`,
`vmr_jax.models.common`).

Every twin names its submodules and parameters as the Flax block names its params
(`dense_0`, `conv_0`, `attention_norm`, `log_temperature`, ...), so that
`vmr_jax.tools.twins.convert` can copy a Flax variable tree into it by path.
Shapes follow the Flax side (`[B, T, D]`, channels last); each block computes the
same function as its Flax twin in float32, masks and padding included.

Nothing here calls the Flax side's helpers: the window layout, the span orders and the
constants are written again from their definitions, so that a bug in a Flax helper
shows up as a twin mismatch instead of being shared by both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

# RReLU's slopes in training: PyTorch's defaults (the Flax `layers.mlp` uses the same).
RRELU_LOWER, RRELU_UPPER = 1 / 8, 1 / 3


def l2_normalize(x):
  """`vmr_jax.layers.attention.l2_normalize`: x / ||x|| over the last axis."""
  return x * torch.rsqrt((x * x).sum(-1, keepdim=True).clamp(min=1e-12))


def masked_mean(x, mask):
  """`x [..., N, D]`, `mask [..., N]` -> `[..., D]`, the mean of the valid rows."""
  weights = mask.to(x.dtype)[..., None]
  return (x * weights).sum(-2) / weights.sum(-2).clamp(min=1.0)


def masked_average(values, mask, dim=None):
  """`vmr_jax.layers.losses.masked_average`: mean of `values` where `mask` (0 if none)."""
  zero = torch.zeros((), dtype=values.dtype)
  if dim is None:
    return torch.where(mask, values, zero).sum() / mask.to(values.dtype).sum().clamp(min=1)
  return (torch.where(mask, values, zero).sum(dim)
          / mask.to(values.dtype).sum(dim).clamp(min=1))


def masked_softmax(logits, mask):
  """Softmax over the last axis where `mask`; masked entries and empty rows get 0."""
  logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
  return torch.where(mask, logits.softmax(-1), torch.zeros((), dtype=logits.dtype))


def sinusoidal_encoding(positions: int, dim: int) -> torch.Tensor:
  """`[positions, dim]`, `vmr_jax.layers.attention.sinusoidal_encoding` of 0..n-1."""
  rates = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
  angles = torch.arange(positions, dtype=torch.float32)[:, None] * rates
  return torch.stack([angles.sin(), angles.cos()], -1).reshape(positions, dim)


def scaled_iou_bce(logits, iou, low: float = 0.0, high: float = 1.0):
  """`vmr_jax.layers.losses.scaled_iou_bce`, per element."""
  targets = ((iou - low) / (high - low)).clamp(0.0, 1.0)
  return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def pairwise_iou(a, b):
  """`[B, N, 2]`, `[B, M, 2]` -> `[B, N, M]` temporal IoU (`vmr_jax.metrics` rules)."""
  inter = (torch.minimum(a[:, :, None, 1], b[:, None, :, 1])
           - torch.maximum(a[:, :, None, 0], b[:, None, :, 0])).clamp(min=0)
  union = (a[:, :, None, 1] - a[:, :, None, 0]) + (b[:, None, :, 1] - b[:, None, :, 0]) - inter
  return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)),
                     torch.zeros_like(inter))


def clip_seconds(video_mask, duration):
  """`[B]` seconds per valid clip."""
  return duration / video_mask.sum(-1).clamp(min=1).to(duration.dtype)


def clip_spans_to_times(spans: np.ndarray, video_mask, duration):
  """`vmr_jax.models.common.clip_spans_to_times`: [start, end) clip spans `[N, 2]` ->
  times `[B, N, 2]` and validity `[B, N]`."""
  spans = torch.as_tensor(np.asarray(spans), dtype=duration.dtype)
  times = spans[None] * clip_seconds(video_mask, duration)[:, None, None]
  return times, spans[None, :, 1] <= video_mask.sum(-1)[:, None]


def inclusive_spans_to_times(spans: np.ndarray, batch):
  """`vmr_jax.models.common.inclusive_spans_to_times`."""
  times, _ = clip_spans_to_times(np.asarray(spans) + np.array([0, 1]), batch["video_mask"],
                                 batch["duration"])
  return times


def top_moments(scores, times, k: int):
  """`scores [B, Q, N]`, `times [B, N, 2]` -> `[B, Q, k, 3]` best first; `k <= 0`
  (or k > N): all N candidates."""
  n = scores.shape[-1]
  best, index = torch.topk(scores, n if k <= 0 else min(k, n), dim=-1)
  picked = torch.gather(times[:, None].expand(-1, scores.shape[1], -1, -1), 2,
                        index[..., None].expand(-1, -1, -1, 2))
  return torch.cat([picked, best[..., None]], dim=-1)


class MLP(nn.Module):
  """`vmr_jax.layers.mlp.MLP`: Linear layers `dense_<i>`, each followed by its
  activation (RReLU with PyTorch's random slopes in training)."""

  def __init__(self, inputs: int, features, activation: str = "rrelu",
               last_activation: str | None = None):
    super().__init__()
    widths = [inputs, *features]
    for i in range(len(features)):
      self.add_module(f"dense_{i}", nn.Linear(widths[i], widths[i + 1]))
    self.activations = [activation] * len(features)
    if last_activation is not None:
      self.activations[-1] = last_activation

  def forward(self, x):
    for i, name in enumerate(self.activations):
      x = getattr(self, f"dense_{i}")(x)
      if name == "rrelu":
        x = F.rrelu(x, RRELU_LOWER, RRELU_UPPER, self.training)
      elif name == "relu":
        x = torch.relu(x)
      elif name == "tanh":
        x = torch.tanh(x)
      elif name != "none":
        raise ValueError(f"unknown activation {name!r}")
    return x


class BiTCN(nn.Module):
  """`vmr_jax.layers.bitcn.BiTCN`: `[B, T, D]`, `[B, T]` -> `[B, T, features]`."""

  def __init__(self, inputs: int, features: int, num_layers: int, kernel_size: int,
               causal: bool = False, dropout: float = 0.0):
    super().__init__()
    self.kernel_size, self.causal, self.num_layers = kernel_size, causal, num_layers
    for i in range(num_layers):
      self.add_module(f"conv_{i}", nn.Conv1d(inputs if i == 0 else features, features,
                                             kernel_size, dilation=2 ** i))
    self.dropout = nn.Dropout(dropout)

  def forward(self, x, mask):
    keep = mask.to(x.dtype)[:, None]
    x = x.transpose(1, 2)
    for i in range(self.num_layers):
      total = (self.kernel_size - 1) * 2 ** i
      padding = (total, 0) if self.causal else (total // 2, total - total // 2)
      x = self.dropout(torch.relu(getattr(self, f"conv_{i}")(F.pad(x * keep, padding))))
    return (x * keep).transpose(1, 2)


def window_has_tail(num_clips: int, window: int, stride: int) -> bool:
  """Whether size `window` at `stride` gets a window aligned to the end: the strided
  windows 0, s, 2s, ... stop short of clip T when (T - w) is not a multiple of s, and
  one more window [T - w, T) covers the clips they skip."""
  if not 1 <= window <= num_clips:
    raise ValueError(f"window {window} does not fit in {num_clips} clips")
  if stride < 1:
    raise ValueError(f"window stride must be >= 1, got {stride}")
  return (num_clips - window) % stride != 0


def window_spans(num_clips: int, sizes, strides, tail: bool = True) -> np.ndarray:
  """`[N, 2]` clip spans [start, end) of the sliding windows, in the order
  `window_conv` emits them: size by size (in the given order), each size's strided
  windows by start, then its tail window (`window_has_tail`; none if not `tail`)."""
  if len(sizes) != len(strides):
    raise ValueError(f"{len(sizes)} window sizes but {len(strides)} strides")
  spans = []
  for w, s in zip(sizes, strides):
    count = (num_clips - w) // s + 1 if w <= num_clips else 0  # a VALID conv's outputs
    spans += [(i * s, i * s + w) for i in range(count)]
    if tail and window_has_tail(num_clips, w, s):
      spans.append((num_clips - w, num_clips))
  return np.array(spans, dtype=np.int32).reshape(-1, 2)


def add_window_convs(parent: nn.Module, prefix: str, inputs: int, features: int, sizes,
                     strides) -> None:
  """Registers `vmr_jax.layers.windows.window_conv`'s convolutions `<prefix>_<w>` on
  `parent` (Flax creates them in the calling module)."""
  for w, s in zip(sizes, strides):
    parent.add_module(f"{prefix}_{w}", nn.Conv1d(inputs, features, w, stride=s))


def window_conv(parent: nn.Module, x, prefix: str, sizes, strides):
  """`vmr_jax.layers.windows.window_conv`: `[B, T, D]` -> `[B, N, features]`, output n
  the convolution of `window_spans(T, sizes, strides)[n]` (a tail window reuses its
  size's kernel)."""
  num_clips, x = x.shape[1], x.transpose(1, 2)
  outputs = []
  for w, s in zip(sizes, strides):
    conv = getattr(parent, f"{prefix}_{w}")
    outputs.append(conv(x))
    if window_has_tail(num_clips, w, s):
      outputs.append(conv(x[:, :, num_clips - w:]))
  return torch.cat(outputs, dim=2).transpose(1, 2)


def packed_rnn(rnn: nn.RNNBase, x, mask):
  """A batch-first `rnn` over `x [B, L, D]` packed by `mask [B, L]`, as
  `vmr_jax.layers.rnn.BiRNN`: (outputs `[B, L, H']`, zero past each length and for
  empty rows; the final state `[B, H']` = [forward at the last valid step; backward
  at step 0] of the last layer)."""
  lengths = mask.sum(1)
  packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                             enforce_sorted=False)
  outputs, h_n = rnn(packed)
  outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True,
                                                total_length=x.shape[1])
  if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
    h_n = h_n[0]
  directions = 2 if rnn.bidirectional else 1
  final = torch.cat(list(h_n[-directions:]), dim=-1)
  nonempty = (lengths > 0).to(x.dtype)
  return outputs * nonempty[:, None, None], final * nonempty[:, None]


RNNS = {"lstm": nn.LSTM, "gru": nn.GRU}


def rnn(kind: str, inputs: int, hidden: int, num_layers: int = 1, dropout: float = 0.0,
        bidirectional: bool = True) -> nn.RNNBase:
  return RNNS[kind](inputs, hidden, num_layers=num_layers, bidirectional=bidirectional,
                    batch_first=True, dropout=dropout if num_layers > 1 else 0.0)


class GloveTextEncoder(nn.Module):
  """`vmr_jax.text.encoders.GloveTextEncoder`: the word table `embedding` (frozen
  unless `trainable`) and an optional recurrent `head`; tokens `[..., L]` -> (words
  `[..., L, H]`, sentence `[..., H]`)."""

  def __init__(self, text_config, vocab_size: int):
    super().__init__()
    from vmr_jax.text.encoders import HEADS
    self.embedding = nn.Embedding(vocab_size, text_config.glove_dim)
    self.embedding.weight.requires_grad = bool(text_config.trainable)
    self.head = None
    if HEADS[text_config.head] is not None:
      self.head = rnn(HEADS[text_config.head], text_config.glove_dim, text_config.head_hidden,
                      text_config.head_layers, text_config.head_dropout)

  def embed(self, tokens):
    return self.embedding(tokens)

  def forward(self, tokens, mask):
    x = self.embedding(tokens)
    if self.head is None:
      return x, masked_mean(x, mask)
    *lead, length = tokens.shape
    words, final = packed_rnn(self.head, x.reshape(-1, length, x.shape[-1]),
                              mask.reshape(-1, length))
    return words.reshape(*lead, length, -1), final.reshape(*lead, -1)


def text_encoder(config, vocab_size: int) -> GloveTextEncoder:
  """The twin of `config.text`'s encoder: GloVe-format vectors only (the PyTorch side
  has no BERT of ours)."""
  if config.text.encoder != "glove":
    raise ValueError(f"the PyTorch twins have only the glove text encoder, not "
                     f"{config.text.encoder!r}")
  return GloveTextEncoder(config.text, vocab_size)


class MultiHeadAttention(nn.Module):
  """`vmr_jax.layers.attention.MultiHeadAttention` ("dot" or "cosine")."""

  def __init__(self, dim: int, heads: int, dropout: float = 0.0, similarity: str = "dot",
               temperature_init: float = 0.1):
    super().__init__()
    self.heads, self.similarity = heads, similarity
    self.query, self.key, self.value, self.output = (nn.Linear(dim, dim) for _ in range(4))
    if similarity == "cosine":
      self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature_init)))
    self.dropout = nn.Dropout(dropout)

  def forward(self, x, context, mask):
    b, d = x.shape[0], x.shape[-1]
    split = lambda y: y.view(b, y.shape[1], self.heads, -1).transpose(1, 2)
    q, k, v = split(self.query(x)), split(self.key(context)), split(self.value(context))
    if self.similarity == "cosine":
      logits = l2_normalize(q) @ l2_normalize(k).transpose(-1, -2) / self.log_temperature.exp()
    else:
      logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    logits = logits.masked_fill(~mask[:, None, None], torch.finfo(logits.dtype).min)
    weights = self.dropout(logits.softmax(-1))
    return self.output((weights @ v).transpose(1, 2).reshape(b, x.shape[1], d))


class GatedCrossAttention(nn.Module):
  """`vmr_jax.layers.attention.GatedCrossAttention` (FIAN's CGA, Eq. 4-6)."""

  def __init__(self, dim: int, heads: int, dropout: float = 0.0):
    super().__init__()
    self.attention = MultiHeadAttention(dim, heads, dropout)
    self.query_proj = nn.Linear(dim, dim, bias=False)
    self.attended_proj = nn.Linear(dim, dim, bias=False)
    self.gate_bias = nn.Parameter(torch.zeros(dim))
    self.info_bias = nn.Parameter(torch.zeros(dim))

  def forward(self, x, context, mask):
    mixed = self.query_proj(x) + self.attended_proj(self.attention(x, context, mask))
    return torch.sigmoid(mixed + self.gate_bias) * (mixed + self.info_bias)


def layer_norm(dim: int) -> nn.LayerNorm:
  """flax.linen.LayerNorm's epsilon (1e-6)."""
  return nn.LayerNorm(dim, eps=1e-6)


class TransformerLayer(nn.Module):
  """`vmr_jax.layers.attention.TransformerLayer`, `similarity` and `gated` included."""

  def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0,
               attention_dropout: float = 0.0, similarity: str = "dot",
               temperature_init: float = 0.1, gated: bool = False):
    super().__init__()
    self.attention = (GatedCrossAttention(dim, heads, attention_dropout) if gated else
                      MultiHeadAttention(dim, heads, attention_dropout, similarity,
                                         temperature_init))
    self.attention_norm, self.output_norm = layer_norm(dim), layer_norm(dim)
    self.intermediate, self.output = nn.Linear(dim, mlp_dim), nn.Linear(mlp_dim, dim)
    self.dropout = nn.Dropout(dropout)

  def forward(self, x, mask, context=None, context_mask=None):
    if context is None:
      context, context_mask = x, mask
    x = self.attention_norm(x + self.dropout(self.attention(x, context, context_mask)))
    h = self.output(torch.relu(self.intermediate(x)))
    return self.output_norm(x + self.dropout(h))
