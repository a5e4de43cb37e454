"""Multi-layer perceptrons and the randomized leaky ReLU (RReLU, Xu et al. 2015)."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

RRELU_LOWER, RRELU_UPPER = 1 / 8, 1 / 3  # PyTorch's defaults


class RReLU(nn.Module):
  """Negative inputs are scaled by a slope drawn from U(lower, upper) per element in
  training (rng stream "dropout"), by the mean slope in evaluation."""
  lower: float = RRELU_LOWER
  upper: float = RRELU_UPPER

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    if train:
      slope = jax.random.uniform(self.make_rng("dropout"), x.shape, x.dtype,
                                 self.lower, self.upper)
    else:
      slope = (self.lower + self.upper) / 2
    return jnp.where(x >= 0, x, slope * x)


class MLP(nn.Module):
  """Dense layers of widths `features`, each followed by `activation` ("rrelu",
  "relu", "tanh" or "none"); `last_activation` may differ for the last layer.
  `dtype`: the layers' computation dtype (None: that of their inputs and params)."""
  features: Sequence[int]
  activation: str = "rrelu"
  last_activation: str | None = None  # None: same as `activation`
  dtype: Any = None

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    for i, width in enumerate(self.features):
      x = nn.Dense(width, dtype=self.dtype, name=f"dense_{i}")(x)
      last = i == len(self.features) - 1
      name = self.last_activation if last and self.last_activation is not None \
          else self.activation
      x = _activate(name, x, train)
    return x


def _activate(name: str, x, train: bool):
  if name == "rrelu":
    return RReLU()(x, train=train)
  if name == "relu":
    return nn.relu(x)
  if name == "tanh":
    return jnp.tanh(x)
  if name == "none":
    return x
  raise ValueError(f"unknown activation {name!r}")
