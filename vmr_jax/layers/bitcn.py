"""Dilated temporal convolution network over clips (CMHN Eq. 1; CLEAR's video side).

Layer e is a kernel-`kernel_size` convolution with dilation 2^(e-1), zero-padded so
the length is kept. Bidirectional (the papers' Bi-TCN): the padding is split evenly,
so clip t sees clips t - r .. t + r (r = (kernel_size - 1)(2^E - 1)/2 after E
layers: 7 for three kernel-3 layers). `causal=True` is the plain TCN (all padding on
the left, as in CMHN's released code): clip t sees only clips <= t. Each layer is
conv -> ReLU -> dropout; padded clips are zeroed before every layer, so they never
leak into valid ones.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class BiTCN(nn.Module):
  """`[B, T, D]` features and `[B, T]` mask -> `[B, T, features]`."""
  features: int
  num_layers: int = 3
  kernel_size: int = 3
  causal: bool = False
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool = False
               ) -> jnp.ndarray:
    keep = mask[..., None].astype(x.dtype)
    for layer in range(self.num_layers):
      dilation = 2 ** layer
      total = (self.kernel_size - 1) * dilation
      padding = [(total, 0)] if self.causal else [(total // 2, total - total // 2)]
      x = nn.Conv(self.features, (self.kernel_size,), kernel_dilation=(dilation,),
                  padding=padding, name=f"conv_{layer}")(x * keep)
      x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
    return x * keep
