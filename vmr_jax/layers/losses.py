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


DISTILLATIONS = ("sigmoid_bce", "softmax_ce", "softmax_bce")


def distillation(student: jnp.ndarray, teacher: jnp.ndarray, temperature: float = 1.0,
                 reading: str = "sigmoid_bce") -> jnp.ndarray:
  """Matching-score distillation of logits `[..., K]` -> `[...]`; no gradient reaches
  `teacher` (FVMR Eq. 9: L_ce(sigma(p / T), sigma(q / T)), with L_ce Eq. 8's BCE).

  - "sigmoid_bce": Eq. 8's per-element BCE of sigmoid(student / T) against the soft
    targets sigmoid(teacher / T), averaged over the K elements: each score is pulled
    towards the teacher's, on the scale of the task's own BCE terms.
  - "softmax_ce": the cross entropy of softmax(student / T) against softmax(teacher /
    T) over the K elements (Hinton et al. 2015), summed: starts near log K.
  - "softmax_bce": Eq. 8's BCE, averaged over the K elements, of the softmax
    distributions themselves (sigma read as the softmax, as Eq. 9's text says).
  """
  teacher = jax.lax.stop_gradient(teacher) / temperature
  student = student / temperature
  if reading == "sigmoid_bce":
    return optax.sigmoid_binary_cross_entropy(student, jax.nn.sigmoid(teacher)).mean(-1)
  target = jax.nn.softmax(teacher, axis=-1)
  log_p = jax.nn.log_softmax(student, axis=-1)
  if reading == "softmax_ce":
    return -jnp.sum(target * log_p, axis=-1)
  if reading == "softmax_bce":
    log_not_p = jnp.log1p(-jnp.minimum(jnp.exp(log_p), 1.0 - 1e-7))
    return -jnp.mean(target * log_p + (1.0 - target) * log_not_p, axis=-1)
  raise ValueError(f"distillation reading must be one of {DISTILLATIONS}, got {reading!r}")
