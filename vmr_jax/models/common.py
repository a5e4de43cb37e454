"""Helpers the model files share: clip spans to times, IoU, top-k moments, nesting."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from vmr_jax import metrics


def clip_spans_to_times(spans: jnp.ndarray, video_mask: jnp.ndarray,
                        duration: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Clip spans `[N, 2]` ([start, end) clip indices) -> times `[B, N, 2]` in seconds
  and validity `[B, N]`.

  A video's valid clips (`video_mask [B, T]`) split its `duration [B]` evenly; a span
  reaching past them (padded videos) is invalid.
  """
  valid_clips = video_mask.sum(-1)
  clip_seconds = duration / jnp.maximum(valid_clips, 1)
  times = spans[None].astype(duration.dtype) * clip_seconds[:, None, None]
  return times, spans[None, :, 1] <= valid_clips[:, None]


def pairwise_iou(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """`[B, N, 2]`, `[B, M, 2]` -> `[B, N, M]` temporal IoU (`vmr_jax.metrics` rules)."""
  return metrics.temporal_iou(a[:, :, None, :], b[:, None, :, :], xp=jnp)


def top_moments(scores: jnp.ndarray, times: jnp.ndarray, k: int) -> jnp.ndarray:
  """`scores [B, Q, N]`, candidate `times [B, N, 2]` -> `[B, Q, k, 3]` best first."""
  k = min(k, scores.shape[-1])
  best, index = jax.lax.top_k(scores, k)
  picked = jnp.take_along_axis(times[:, None], index[..., None], axis=2)
  return jnp.concatenate([picked, best[..., None]], axis=-1)


def nest(key: str, tree: Mapping[str, Any] | None) -> dict:
  """`{key: tree}`, or `{}` for no tree."""
  return {key: dict(tree)} if tree else {}


def nest_paths(key: str, paths) -> tuple[tuple[str, ...], ...]:
  return tuple((key, *p) for p in paths)
