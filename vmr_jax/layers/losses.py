"""Losses shared by several models."""

from __future__ import annotations

import jax.numpy as jnp


def similarity_preserving(candidates: jnp.ndarray, queries: jnp.ndarray,
                          iou: jnp.ndarray, scale: float,
                          pair_mask: jnp.ndarray) -> jnp.ndarray:
  """|| C Q^T - scale * IoU ||_F^2 per example over valid pairs (CMHN Eq. 7, CLEAR's
  coarse loss).

  Args:
    candidates: `[B, N, L]` moment representations.
    queries: `[B, M, L]` query representations.
    iou: `[B, N, M]` target similarities (IoU of candidate and query moment).
    scale: the code length L (CMHN) or d (CLEAR).
    pair_mask: `[B, N, M]`, False for padded candidates or queries.

  Returns:
    `[B]` squared Frobenius norms.
  """
  residual = jnp.einsum("bnl,bml->bnm", candidates, queries) - scale * iou
  return jnp.sum(jnp.where(pair_mask, residual, 0.0) ** 2, axis=(1, 2))
