"""Attention blocks shared by the text encoders and the models."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class MultiHeadAttention(nn.Module):
  """Multi-head attention with a key mask.

  `query [B, Lq, D]`, `key_value [B, Lk, D]`, `mask [B, Lk]` (True = attend) ->
  `[B, Lq, D]`. Projections `query`, `key`, `value`, `output` are Dense [D, D]
  (the layout of BERT's self-attention); dropout acts on the attention weights.
  Masked keys get the dtype's most negative logit, so a query row whose keys are all
  masked attends uniformly rather than producing NaN.

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
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, query: jnp.ndarray, key_value: jnp.ndarray, mask: jnp.ndarray,
               *, train: bool = False) -> jnp.ndarray:
    features = query.shape[-1]
    if features % self.num_heads:
      raise ValueError(f"{features} features do not split into {self.num_heads} heads")
    head_dim = features // self.num_heads

    def heads(name, x):
      y = nn.Dense(features, dtype=self.dtype, name=name)(x)
      return y.reshape(*y.shape[:-1], self.num_heads, head_dim)

    q, k, v = heads("query", query), heads("key", key_value), heads("value", key_value)
    if self.similarity == "dot":
      logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(self.dtype)
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
    return nn.Dense(features, dtype=self.dtype, name="output")(out)


def l2_normalize(x: jnp.ndarray) -> jnp.ndarray:
  """x / ||x|| over the last axis (zero vectors stay zero)."""
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))
