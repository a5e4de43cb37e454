"""Attention blocks shared by the text encoders and the models."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


class MultiHeadAttention(nn.Module):
  """Multi-head attention with a key mask.

  `query [B, Lq, D]`, `key_value [B, Lk, D]`, `mask [B, Lk]` (True = attend) ->
  `[B, Lq, D]`. Projections `query`, `key`, `value`, `output` are Dense [D, D]
  (the layout of BERT's self-attention); dropout acts on the attention weights.
  Masked keys get the dtype's most negative logit, so a query row whose keys are all
  masked attends uniformly rather than producing NaN (in bfloat16 too). Computes in
  the dtype of its inputs and parameters (`vmr_jax.precision`).

  `similarity`:
  - "dot": q . k / sqrt(head_dim) (Vaswani et al.; BERT).
  - "cosine": cos(q, k) / sigma per head, sigma a learned scalar of the layer
    (HSCNet Eq. 1, paper 003: phi, rho, psi are the query, key and value
    projections; Eq. 2 is the weighted sum). sigma is learned as log sigma, so it
    stays positive; it starts at `temperature_init` (the paper gives no value).
  """
  num_heads: int
  dropout: float = 0.0
  similarity: str = "dot"
  temperature_init: float = 0.1

  @nn.compact
  def __call__(self, query: jnp.ndarray, key_value: jnp.ndarray, mask: jnp.ndarray,
               *, train: bool = False) -> jnp.ndarray:
    features = query.shape[-1]
    if features % self.num_heads:
      raise ValueError(f"{features} features do not split into {self.num_heads} heads")
    head_dim = features // self.num_heads

    def heads(name, x):
      y = nn.Dense(features, name=name)(x)
      return y.reshape(*y.shape[:-1], self.num_heads, head_dim)

    q, k, v = heads("query", query), heads("key", key_value), heads("value", key_value)
    if self.similarity == "dot":
      logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(q.dtype)
    elif self.similarity == "cosine":
      log_sigma = self.param("log_temperature",
                             nn.initializers.constant(jnp.log(self.temperature_init)), ())
      logits = jnp.einsum("bqhd,bkhd->bhqk", l2_normalize(q), l2_normalize(k)) / jnp.exp(log_sigma)
    else:
      raise ValueError(f"similarity must be 'dot' or 'cosine', got {self.similarity!r}")
    logits = jnp.where(mask[:, None, None, :], logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits, axis=-1)
    weights = nn.Dropout(self.dropout, deterministic=not train)(weights)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(*query.shape[:-1], features)
    return nn.Dense(features, name="output")(out)


class GatedCrossAttention(nn.Module):
  """FIAN's cross-modal guided attention, CGA (paper 004, Eq. 4-6).

  `query [B, Lq, D]`, `key_value [B, Lk, D]`, `mask [B, Lk]` -> `[B, Lq, D]`:
  c = CMA(query, key_value), multi-head scaled dot-product attention (Eq. 4-5,
  `MultiHeadAttention` "dot"), then the information gate (Eq. 6)
      sigmoid(W_q query + W_v c + b_g) * (W_q query + W_v c + b_i),
  where the gate and the information branch share W_q and W_v (as the paper keeps
  them) and have their own biases.
  """
  num_heads: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, query: jnp.ndarray, key_value: jnp.ndarray, mask: jnp.ndarray,
               *, train: bool = False) -> jnp.ndarray:
    features = query.shape[-1]
    attended = MultiHeadAttention(self.num_heads, self.dropout, name="attention")(
        query, key_value, mask, train=train)
    mixed = (nn.Dense(features, use_bias=False, name="query_proj")(query)
             + nn.Dense(features, use_bias=False, name="attended_proj")(attended))
    gate_bias = self.param("gate_bias", nn.initializers.zeros, (features,))
    info_bias = self.param("info_bias", nn.initializers.zeros, (features,))
    return jax.nn.sigmoid(mixed + gate_bias) * (mixed + info_bias)


class TransformerLayer(nn.Module):
  """Attention + feed-forward, each with a residual and a post-LayerNorm (Vaswani et
  al. 2017; BERT's layer, whose parameter names these are).

  `x [B, L, D]`, `mask [B, L]` -> `[B, L, D]`: self-attention, or cross-attention
  from `x` to `context [B, Lc, D]` with `context_mask [B, Lc]` when given.
  `similarity` and `temperature_init` are `MultiHeadAttention`'s. `gated=True` puts
  `GatedCrossAttention` in the attention's place: FIAN's cross-modal encoder,
  FFN(CGA(Q, V)) with its residuals and LayerNorms (paper 004, Eq. 7-8, Fig. 4b).
  """
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  attention_dropout: float = 0.0
  activation: Callable = jax.nn.relu
  layer_norm_eps: float = 1e-6
  similarity: str = "dot"
  temperature_init: float = 0.1
  gated: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, context: jnp.ndarray | None = None,
               context_mask: jnp.ndarray | None = None, train: bool = False) -> jnp.ndarray:
    if context is None:
      context, context_mask = x, mask
    dropout = nn.Dropout(self.dropout, deterministic=not train)
    if self.gated:
      attention = GatedCrossAttention(self.num_heads, self.attention_dropout,
                                      name="attention")
    else:
      attention = MultiHeadAttention(self.num_heads, self.attention_dropout, self.similarity,
                                     self.temperature_init, name="attention")
    attended = attention(x, context, context_mask, train=train)
    x = nn.LayerNorm(self.layer_norm_eps, name="attention_norm")(x + dropout(attended))
    h = self.activation(nn.Dense(self.mlp_dim, name="intermediate")(x))
    h = nn.Dense(x.shape[-1], name="output")(h)
    return nn.LayerNorm(self.layer_norm_eps, name="output_norm")(x + dropout(h))


def sinusoidal_encoding(positions: jnp.ndarray, dim: int, dtype=jnp.float32) -> jnp.ndarray:
  """Positions `[...]` (integers) -> `[..., dim]` sin/cos encodings (Vaswani et al.
  2017, Sec. 3.5) in `dtype`: channel 2i is sin(p / 10000^(2i/dim)), channel 2i+1 its
  cos. The angles are float32 whatever `dtype` (in bfloat16 positions past 256 would
  step by 2 or more)."""
  if dim % 2:
    raise ValueError(f"sinusoidal encodings need an even dim, got {dim}")
  rates = jnp.exp(-jnp.log(10000.0) * jnp.arange(0, dim, 2) / dim)
  angles = positions.astype(jnp.float32)[..., None] * rates
  return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(
      *positions.shape, dim).astype(dtype)


def masked_mean(x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """`x [..., N, D]`, `mask [..., N]` -> `[..., D]` mean of the valid rows (0 if none)."""
  weights = mask.astype(x.dtype)[..., None]
  return (x * weights).sum(-2) / jnp.maximum(weights.sum(-2), 1.0)


def l2_normalize(x: jnp.ndarray) -> jnp.ndarray:
  """x / ||x|| over the last axis (zero vectors stay zero)."""
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def masked_softmax(logits: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Softmax over the last axis of `logits [..., K]` where `mask [..., K]` is True;
  masked entries get 0 weight, and a row with no valid entry is all 0."""
  logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
  return jnp.where(mask, jax.nn.softmax(logits, axis=-1), 0.0)
