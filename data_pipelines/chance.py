"""Chance levels of a dataset: the metrics of a ranker that orders the moments of a
clip grid uniformly at random. The builders write them into the dataset's metadata
and `python -m data_pipelines.build` prints them.

IoU and metric names follow `vmr_jax.metrics` (`tests/test_metrics.py` checks that the
two agree); this package does not import the library.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def grid_moments(num_clips: int, duration: float) -> np.ndarray:
  """All `num_clips * (num_clips + 1) / 2` moments `[i, j]` (i <= j) of a clip grid.

  Returns `[M, 2]` times in seconds: clip i spans `[i, i + 1) * duration / num_clips`.
  """
  i, j = np.triu_indices(num_clips)
  step = duration / num_clips
  return np.stack([i * step, (j + 1) * step], axis=-1)


def chance_levels(gts: np.ndarray, durations: np.ndarray, num_clips: int,
                  ns: Sequence[int], thresholds: Sequence[float]) -> dict[str, float]:
  """`{"R@n,IoU=m": .., "mIoU": ..}` of uniformly random rankings of the grid moments.

  For each query, `k` of the `M` grid moments reach IoU >= m; a random top-n (drawn
  without replacement) contains one of them with probability `1 - C(M-k, n)/C(M, n)`.
  mIoU is the mean IoU over all grid moments. Exact, no sampling. A moment's IoU with
  a query of several windows is its largest with any (`vmr_jax.metrics`).

  Args:
    gts: `[Q, 2]` ground truth in seconds, or per query its windows `[W_q, 2]`;
      durations: `[Q]` video durations.
  """
  gts = [np.asarray(g, dtype=np.float64).reshape(-1, 2) for g in gts]
  durations = np.asarray(durations, dtype=np.float64).reshape(-1)
  names = {(n, m): f"R@{n},IoU={m:g}" for n in ns for m in thresholds}
  out = dict.fromkeys(names.values(), 0.0)
  miou = 0.0
  for windows, duration in zip(gts, durations):
    moments = grid_moments(num_clips, duration)
    ious = np.max([_iou_with(moments, w) for w in windows], axis=0)
    total = len(ious)
    miou += ious.mean()
    for m in thresholds:
      misses = total - int((ious >= m).sum())
      for n in ns:
        out[names[n, m]] += 1.0 - _ratio_of_choices(misses, total, n)
  out = {k: v / len(gts) for k, v in out.items()}
  out["mIoU"] = float(miou / len(gts))
  return out


def _iou_with(moments: np.ndarray, window: np.ndarray) -> np.ndarray:
  """`[M, 2]` moments, one `[2]` window -> `[M]` temporal IoU (0 where the union is 0)."""
  inter = np.maximum(0.0, np.minimum(moments[:, 1], window[1])
                     - np.maximum(moments[:, 0], window[0]))
  union = (moments[:, 1] - moments[:, 0]) + (window[1] - window[0]) - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _ratio_of_choices(misses: int, total: int, n: int) -> float:
  """C(misses, n) / C(total, n): chance that n draws without replacement all miss."""
  ratio = 1.0
  for t in range(min(n, total)):
    ratio *= max(misses - t, 0) / (total - t)
  return ratio
