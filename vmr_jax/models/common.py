"""Helpers the model files share: clip spans to times, IoU, top-k moments, the text
encoder submodule."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmr_jax import metrics, registry
from vmr_jax.text import encoders


def clip_spans_to_times(spans: jnp.ndarray, video_mask: jnp.ndarray,
                        duration: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Clip spans `[N, 2]` ([start, end) clip indices) -> times `[B, N, 2]` in seconds
  and validity `[B, N]`.

  A video's valid clips (`video_mask [B, T]`) split its `duration [B]` evenly; a span
  reaching past them (padded videos) is invalid.
  """
  seconds = clip_seconds(video_mask, duration)
  times = spans[None].astype(duration.dtype) * seconds[:, None, None]
  return times, spans[None, :, 1] <= video_mask.sum(-1)[:, None]


def clip_seconds(video_mask: jnp.ndarray, duration: jnp.ndarray) -> jnp.ndarray:
  """`[B]` seconds per valid clip: `duration [B]` split over `video_mask [B, T]`."""
  return duration / jnp.maximum(video_mask.sum(-1), 1)


def inclusive_spans_to_times(spans, batch) -> jnp.ndarray:
  """Inclusive clip spans `[N, 2]` (span (i, j) -> [i T/L, (j + 1) T/L)) -> candidate
  times `[B, N, 2]` in seconds of the batch's videos (`video_mask`, `duration`)."""
  exclusive = jnp.asarray(spans + np.array([0, 1], np.int32))
  times, _ = clip_spans_to_times(exclusive, batch["video_mask"], batch["duration"])
  return times


def grid_times(spans, duration: jnp.ndarray, num_clips: int) -> jnp.ndarray:
  """Clip positions `[N, 2]` of an L-clip grid over the whole video -> seconds
  `[B, N, 2]`, position p at p T/L of a video of `duration [B]` T (every video
  resampled to the L clips)."""
  return jnp.asarray(spans, jnp.float32)[None] * (duration / num_clips)[:, None, None]


def pairwise_iou(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """`[B, N, 2]`, `[B, M, 2]` -> `[B, N, M]` temporal IoU (`vmr_jax.metrics` rules)."""
  return metrics.temporal_iou(a[:, :, None, :], b[:, None, :, :], xp=jnp)


def gt_windows(batch) -> jnp.ndarray:
  """Each query's ground-truth windows: `gt_windows [B, Q, K, 2]` (`[B, K, 2]` in
  query-level batches) where the batch has them (`data.duplicate_sentences =
  "merge"`: every annotated window of the query, padded by repeating the first), else
  its one window `gt_times [B, Q, 2]` as K = 1: `gt_times[..., None, :]`."""
  if "gt_windows" in batch:
    return batch["gt_windows"]
  return batch["gt_times"][..., None, :]


def target_iou(times: jnp.ndarray, batch) -> jnp.ndarray:
  """Candidate `times [B, N, 2]` -> `[B, N, Q]` IoU with each query's ground truth:
  the largest over its windows `gt_windows [B, Q, K, 2]` where the batch has them
  (`data.duplicate_sentences = "merge"`), else with `gt_times [B, Q, 2]`. In
  query-level batches (`gt_times [B, 2]`, `gt_windows [B, K, 2]`) -> `[B, N]`.
  The targets of the IoU-map losses (a candidate is as good as its best window)."""
  if batch["gt_times"].ndim == 2:  # query-level: one query per example
    return target_iou(times, {key: batch[key][:, None] for key in ("gt_times", "gt_windows")
                              if key in batch})[..., 0]
  if "gt_windows" not in batch:
    return pairwise_iou(times, batch["gt_times"])
  b, q, k, _ = batch["gt_windows"].shape
  iou = pairwise_iou(times, batch["gt_windows"].reshape(b, q * k, 2))
  return iou.reshape(*iou.shape[:2], q, k).max(axis=-1)


def best_window(times: jnp.ndarray, windows: jnp.ndarray) -> jnp.ndarray:
  """For each segment of `times [*S, *E, 2]` the one of its query's `windows
  [*S, K, 2]` (S the query axes, e.g. (B, Q) or (B,); E any extra axes, e.g. a
  candidate axis) with the largest IoU with it (`vmr_jax.metrics` rules; the first on
  ties, so a padding window, a repeat of the first, is never picked over it and a
  segment overlapping no window gets the first) -> `[*S, *E, 2]`. An integer pick:
  no gradient flows to `times`."""
  lead = windows.shape[:-2]
  extra = times.shape[len(lead):-1]
  flat = jax.lax.stop_gradient(times).reshape(*lead, -1, 2)  # [*S, M, 2]
  iou = metrics.temporal_iou(flat[..., :, None, :], windows[..., None, :, :], xp=jnp)
  index = jnp.argmax(iou, axis=-1)  # [*S, M]
  every = jnp.broadcast_to(windows[..., None, :, :], (*iou.shape, 2))  # [*S, M, K, 2]
  picked = jnp.take_along_axis(every, index[..., None, None], axis=-2)[..., 0, :]
  return picked.reshape(*lead, *extra, 2)


def matched_window(times: jnp.ndarray, batch) -> jnp.ndarray:
  """The ground-truth window a regression or boundary target should use for each
  segment of `times`: `[B, Q, 2]` (one per query: a prediction, a best candidate) or
  `[B, Q, *E, 2]` (e.g. `[B, Q, N, 2]` candidates), `[B, *E, 2]` in query-level
  batches -> the same shape: the query's window (`gt_windows`) with the largest IoU
  with the segment (`best_window`). Without `gt_windows`, `gt_times` broadcast to
  `times`' shape, the single-window target as it is."""
  if "gt_windows" not in batch:
    gt = batch["gt_times"]
    extra = times.ndim - gt.ndim
    return jnp.broadcast_to(gt.reshape(*gt.shape[:-1], *(1,) * extra, 2), times.shape)
  return best_window(times, batch["gt_windows"])


def collection_products(moments: jnp.ndarray, queries: jnp.ndarray) -> jnp.ndarray:
  """`[V, N, D]` moments of a collection, `[S, D]` queries -> `[S, V, N]` inner
  products, as one `[S, D] x [D, V N]` matrix product (XLA's CPU code runs the
  einsum "vnd,sd->svn" about 3x slower at 10^6 moments)."""
  videos, candidates, dim = moments.shape
  return (queries @ moments.reshape(-1, dim).T).reshape(len(queries), videos, candidates)


def top_moments(scores: jnp.ndarray, times: jnp.ndarray, k: int) -> jnp.ndarray:
  """`scores [B, Q, N]`, candidate `times [B, N, 2]` -> `[B, Q, k, 3]` best first.

  `k <= 0` or `k >= N` (`eval.top_k = 0`, the default): all N candidates, sorted, as
  2D-TAN's evaluation ranks every cell of its map before NMS. Equal scores keep the
  lower candidate index first (`jax.lax.top_k`); `eval.tie_order = "2dtan"` reorders
  them on the host (`vmr_jax.metrics.map_order`).
  """
  n = scores.shape[-1]
  k = n if k <= 0 else min(k, n)
  best, index = jax.lax.top_k(scores, k)
  picked = jnp.take_along_axis(times[:, None], index[..., None], axis=2)
  return jnp.concatenate([picked, best[..., None]], axis=-1)


class TextVideoModule(nn.Module):
  """Base of the model modules: their config section and the text encoder of
  `config.text` (built by `with_text_encoder`)."""
  config: Any  # the model's section, e.g. config.cmhn
  text_encoder: nn.Module
  token_key: str  # the batch keys of the encoder's tokens and their mask
  mask_key: str

  def encode_text(self, batch, *, train: bool):
    """-> (token features `[B, Q, L, D]`, sentence vectors `[B, Q, D]`)."""
    return self.text_encoder(batch[self.token_key], batch[self.mask_key], train=train)


def with_text_encoder(config, info: registry.DataInfo,
                      build: Callable[[nn.Module, str, str], TextVideoModule]
                      ) -> registry.Model:
  """The model `build(text encoder module, token key, mask key)`: the encoder's
  pretrained and frozen parameters are placed under `text_encoder`."""
  encoder = encoders.create(config.text, info.words, info.cache_dir)
  module = build(encoder.module, encoder.token_key, encoder.mask_key)
  pretrained = {"text_encoder": dict(encoder.pretrained)} if encoder.pretrained else {}
  frozen = tuple(("text_encoder", *path) for path in encoder.frozen)
  return registry.Model(module, pretrained=pretrained, frozen=frozen)
