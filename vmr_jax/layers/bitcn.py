"""Dilated temporal convolution networks over clips (CMHN Eq. 1; CLEAR's video side).

`BiTCN`, the papers' Bi-TCN: layer e is a kernel-`kernel_size` convolution with
dilation 2^(e-1), zero-padded so the length is kept. Bidirectional: the padding is
split evenly, so clip t sees clips t - r .. t + r (r = (kernel_size - 1)(2^E - 1)/2
after E layers: 7 for three kernel-3 layers). `causal=True` puts all padding on the
left (a plain causal TCN, Bai et al. 2018): clip t sees only clips <= t. Each layer
is conv -> ReLU -> dropout.

`ResidualTCN`, the temporal convolution network of CMHN's released code (Bai et al.'s
`TemporalConvNet` with its chomp removed, so it is not causal): level e is a residual
block of two weight-normed (`WeightNormConv`) kernel-`kernel_size` convolutions of
dilation 2^(e-1), symmetric zero padding (k - 1) 2^(e-1) / 2 per side, each followed by
RReLU and dropout; the block's input (through a 1x1 convolution where the widths
differ) is added, then RReLU. Widths per level: `channels` (the release: 2048, 1024,
512, 256 on TACoS, kernel 3; 448 ... 256 in steps of 32, kernel 7, on ActivityNet).

Padded clips (`mask [B, T]` False) are zeroed before every convolution, so a padded
video computes what the video alone computes with the convolutions' own zero padding
past its end: padded clips never leak into valid ones.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from vmr_jax.layers.mlp import RReLU


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


class WeightNormConv(nn.Module):
  """A 1-D convolution with weight normalization (Salimans and Kingma 2016), as
  PyTorch's `weight_norm(nn.Conv1d)`: kernel = g v / ||v||, the norm over each output
  channel's `[k, in]` weights. `[B, T, D]` -> `[B, T', features]`; params `weight_v
  [k, D, features]` (initialized N(0, 0.01^2), the release's `init_weights`),
  `weight_g [features]` (initialized to ||v||, as `weight_norm` does) and `bias`."""
  features: int
  kernel_size: int
  dilation: int = 1
  padding: int = 0

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    v = self.param("weight_v", nn.initializers.normal(0.01),
                   (self.kernel_size, x.shape[-1], self.features))
    g = self.param("weight_g", lambda _, v: jnp.sqrt(jnp.sum(v ** 2, axis=(0, 1))), v)
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    kernel = v * (g / jnp.sqrt(jnp.sum(v ** 2, axis=(0, 1))))
    out = nn.Conv(self.features, (self.kernel_size,), kernel_dilation=(self.dilation,),
                  padding=[(self.padding, self.padding)], use_bias=False,
                  name="conv").apply({"params": {"kernel": kernel}}, x)
    return out + bias


class TemporalBlock(nn.Module):
  """One level of `ResidualTCN`: `[B, T, D]`, `[B, T, 1]` keep -> `[B, T, features]`."""
  features: int
  kernel_size: int
  dilation: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, keep, *, train: bool = False):
    padding = (self.kernel_size - 1) * self.dilation // 2
    out = x
    for name in ("conv1", "conv2"):
      out = WeightNormConv(self.features, self.kernel_size, self.dilation, padding,
                           name=name)(out * keep)
      out = nn.Dropout(self.dropout, deterministic=not train)(RReLU()(out, train=train))
    residual = x if x.shape[-1] == self.features else nn.Conv(
        self.features, (1,), kernel_init=nn.initializers.normal(0.01),
        name="downsample")(x)
    return RReLU()(out + residual, train=train)


class ResidualTCN(nn.Module):
  """`[B, T, D]` features and `[B, T]` mask -> `[B, T, channels[-1]]`; level i is
  `network_<i>` (the release's `network[i]`)."""
  channels: Sequence[int]
  kernel_size: int = 3
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool = False
               ) -> jnp.ndarray:
    if (self.kernel_size - 1) % 2:
      raise ValueError(f"the release's symmetric padding needs an odd kernel, got "
                       f"{self.kernel_size}")
    keep = mask[..., None].astype(x.dtype)
    for level, width in enumerate(self.channels):
      x = TemporalBlock(width, self.kernel_size, 2 ** level, self.dropout,
                        name=f"network_{level}")(x * keep, keep, train=train)
    return x * keep
