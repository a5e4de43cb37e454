"""PyTorch layers the equivalents share: Bi-TCN, GloVe + BiGRU sentences, IoU."""

from __future__ import annotations

import torch
from torch import nn


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


class SentenceGRU(nn.Module):
  """Word vectors + BiGRU, the last states of both directions: tokens `[B, Q, W]`,
  mask `[B, Q, W]` -> `[B, Q, 2 hidden]` (the GloVe + bigru text encoder)."""

  def __init__(self, vocab_size: int, glove_dim: int, hidden: int, layers: int):
    super().__init__()
    self.embedding = nn.Embedding(vocab_size, glove_dim)
    self.gru = nn.GRU(glove_dim, hidden, num_layers=layers, bidirectional=True,
                      batch_first=True)

  def forward(self, tokens, mask):
    b, q, length = tokens.shape
    lengths = mask.reshape(b * q, length).sum(1).clamp(min=1)
    packed = nn.utils.rnn.pack_padded_sequence(
        self.embedding(tokens.reshape(b * q, length)), lengths.cpu(), batch_first=True,
        enforce_sorted=False)
    _, h_n = self.gru(packed)
    return torch.cat([h_n[-2], h_n[-1]], dim=-1).reshape(b, q, -1)


def pairwise_iou(a, b):
  """`[B, N, 2]`, `[B, M, 2]` -> `[B, N, M]` temporal IoU (0 for empty unions)."""
  inter = (torch.minimum(a[:, :, None, 1], b[:, None, :, 1])
           - torch.maximum(a[:, :, None, 0], b[:, None, :, 0])).clamp(min=0)
  union = (a[:, :, None, 1] - a[:, :, None, 0]) + (b[:, None, :, 1] - b[:, None, :, 0]) - inter
  return torch.where(union > 0, inter / union.clamp(min=1e-9), torch.zeros_like(inter))
