"""Losses shared by several models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from vmr_jax import metrics


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


def temporal_giou(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """Generalized IoU (Rezatofighi et al. 2019) of segments `[..., 2]` -> `[...]`.

  GIoU = IoU - (|hull| - |union|) / |hull|, in [-1, 1]; hull = the smallest segment
  covering both. Unlike IoU it still ranks disjoint segments by their gap. Zero
  unions and hulls give 0 (IoU's convention in `vmr_jax.metrics`), with finite
  gradients.
  """
  inter, union = metrics.intersection_union(pred, target, xp=jnp)
  hull = (jnp.maximum(pred[..., 1], target[..., 1])
          - jnp.minimum(pred[..., 0], target[..., 0]))
  iou = jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)
  gap = jnp.where(hull > 0, (hull - union) / jnp.where(hull > 0, hull, 1.0), 0.0)
  return iou - gap


def l1_giou_loss(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Mean over valid segments of |start - start'| + |end - end'| + (1 - GIoU).

  `pred`, `target`: `[..., 2]` (normalized times, so both terms are on one scale);
  `mask [...]`. The regression loss of HSCNet's decoders (paper 003, Eq. 10-11).
  """
  per_segment = jnp.abs(pred - target).sum(-1) + 1.0 - temporal_giou(pred, target)
  return masked_average(per_segment, mask)


def scaled_iou_bce(logits: jnp.ndarray, iou: jnp.ndarray, low: float = 0.0,
                   high: float = 1.0) -> jnp.ndarray:
  """Per-element binary cross entropy of sigmoid(`logits`) against soft targets
  y = clip((IoU - low) / (high - low), 0, 1): the raw IoU for (0, 1) (CLEAR Eq. 7),
  2D-TAN's scaled IoU for (0.3, 0.7) or (0.5, 1). `[...]`, `[...]` -> `[...]`.
  """
  if not 0.0 <= low < high <= 1.0:
    raise ValueError(f"IoU target range needs 0 <= low < high <= 1, got ({low}, {high})")
  targets = jnp.clip((iou - low) / (high - low), 0.0, 1.0)
  return optax.sigmoid_binary_cross_entropy(logits, targets)


def masked_average(values: jnp.ndarray, mask: jnp.ndarray, axis=None) -> jnp.ndarray:
  """Mean of `values [...]` where `mask [...]` is True (0 if none), over `axis`
  (default: all axes)."""
  total = jnp.sum(jnp.where(mask, values, 0.0), axis=axis)
  return total / jnp.maximum(mask.astype(values.dtype).sum(axis=axis), 1.0)


def distillation_cross_entropy(student: jnp.ndarray, teacher: jnp.ndarray,
                               temperature: float = 1.0) -> jnp.ndarray:
  """Cross entropy of softmax(`student` / T) against the fixed target softmax(`teacher`
  / T) over the last axis: logits `[..., K]` -> `[...]`. No gradient reaches
  `teacher` (Hinton et al. 2015; FVMR Eq. 9)."""
  target = jax.nn.softmax(jax.lax.stop_gradient(teacher) / temperature, axis=-1)
  return -jnp.sum(target * jax.nn.log_softmax(student / temperature, axis=-1), axis=-1)
