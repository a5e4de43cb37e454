"""Temporal grounding metrics on numpy arrays: IoU, NMS, R@n,IoU=m, mIoU.

Conventions (the same everywhere in vmr_jax):
- A moment is `(start, end)` in seconds; a ranked prediction is `(start, end, score)`.
- Temporal IoU is `|a ∩ b| / |a ∪ b|`, where the union is the hull length minus the
  gap between the segments. Two segments that only touch have IoU 0. A zero-length
  segment has IoU 0 with everything, itself included (its union can be 0; defining
  the ratio as 0 there keeps every IoU finite and a degenerate prediction never a hit).
- A query may have several ground-truth windows (a sentence annotated more than once,
  `data.duplicate_sentences = "merge"`); a prediction's IoU is then its largest with
  any of them (CMHN's released `Evaluate`, Moment-DETR's `standalone_eval`).
- A query is a hit for R@n,IoU=m when one of its top-n predictions has IoU >= m.
  (2D-TAN's evaluation code compares with a strict `>`; the two differ only when an
  IoU equals a threshold exactly.)
- mIoU is the mean over queries of the IoU of the top-1 prediction.

Moment-DETR's `standalone_eval/eval.py` (QVHighlights, and the JSON-lines datasets
after it; `moment_detr_metrics`) adds, over each query's first `MAP_TOP_K` = 10
predictions, the mean average precision at IoU 0.5:0.05:0.95 (`average_precision`:
every window is a positive to find, each matched at most once), "R1" (R@1 under
another name: IoU of the top-1 with its best window) and mAP over the windows of a
length range.

The evaluation protocol (`vmr_jax.evaluate`, 2D-TAN's `lib/core/eval.py` and
`moment_localization/train.py:get_proposal_results`): every candidate of a query is
ranked by score (`eval.top_k = 0`), greedy NMS (`nms`, suppression when IoU > the
threshold) walks the whole ranking keeping up to max(n) moments, then R@n and mIoU.
Equal scores are ordered as 2D-TAN's argsort of its raveled score map does with
`map_order` (`eval.tie_order = "2dtan"`). CMHN's released protocol
(`eval.nms_offset`) runs NMS once per IoU threshold m, at m - offset, for R@n at m.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np


def temporal_iou(a, b, xp=np):
  """IoU of segments `a [..., 2]` and `b [..., 2]` (broadcast) -> `[...]`.

  `xp`: the array namespace, numpy (default, float64) or jax.numpy (inside jit).
  """
  if xp is np:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
  inter, union = intersection_union(a, b, xp)
  return xp.where(union > 0, inter / xp.where(union > 0, union, 1.0), 0.0)


def intersection_union(a, b, xp=np):
  """Lengths of the intersection and of the union of segments `a`, `b` `[..., 2]`."""
  inter = xp.maximum(
      0.0, xp.minimum(a[..., 1], b[..., 1]) - xp.maximum(a[..., 0], b[..., 0]))
  return inter, (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU between every row of `a [N, 2]` and every row of `b [M, 2]` -> `[N, M]`."""
  return temporal_iou(np.asarray(a)[:, None, :2], np.asarray(b)[None, :, :2])


def nms(moments: np.ndarray, threshold: float, top_k: int | None = None, *,
        sort: bool = True) -> np.ndarray:
  """Greedy non-maximum suppression over ranked moments (2D-TAN's `nms`: a walk
  down the whole ranking).

  Args:
    moments: `[N, 3]` rows of `(start, end, score)`, in any order.
    threshold: a moment is suppressed when its IoU with an already kept, higher
      ranked moment is strictly greater than this.
    top_k: stop after keeping this many (None: keep all survivors).
    sort: rank by descending score first (ties keep the input order); False: the
      rows are already ranked, best first (e.g. by `map_order`).

  Returns:
    `[K, 3]` kept moments, best first.
  """
  moments = np.asarray(moments, dtype=np.float64).reshape(-1, 3)
  ranked = moments[np.argsort(-moments[:, 2], kind="stable")] if sort else moments
  keep: list[int] = []
  suppressed = np.zeros(len(ranked), dtype=bool)
  for i in range(len(ranked)):
    if suppressed[i]:
      continue
    keep.append(i)
    if top_k is not None and len(keep) >= top_k:
      break
    ious = temporal_iou(ranked[i, :2], ranked[i + 1:, :2])
    suppressed[i + 1:] |= ious > threshold
  return ranked[keep]


def map_order(moments: np.ndarray, duration: float, num_clips: int) -> np.ndarray:
  """Ranked 2D-map moments `[N, 3]` reordered exactly as 2D-TAN's evaluation ranks
  its score map, equal scores included.

  2D-TAN (`get_proposal_results`) ravels the dense `[T, T]` map (score x mask: 0 off
  the map's cells and below the diagonal) row-major, index `i * T + j` for the span
  of start clip i and end clip j inclusive, takes `np.argsort(map.ravel())[::-1]`
  (numpy's default, unstable kind, reversed: ties do not simply keep index order,
  e.g. an all-equal map comes out by descending index) and drops the entries with
  i > j. Here the same float32 map is built from the moments and sorted the same way;
  positions holding no moment are then dropped.

  Those positions are 2D-TAN's off-cells (score 0). They rank below every cell with a
  positive (sigmoid) score, and they are never reached: every 1-clip cell (i, i) is
  a cell (2D-TAN's first scale; a dense map), a kept moment K suppresses a 1-clip cell
  c only when IoU(c, K) = 1/|K| > t (c inside K, |K| in clips), i.e. fewer than 1/t
  of them, so after n - 1 kept moments a 1-clip cell survives NMS at threshold t
  whenever T >= (n - 1)/t (R@5, 128 clips: t >= 0.03125; 64 clips: t >= 0.0625).
  The order is exact when every cell is given (`eval.top_k = 0`); after a top-k cut
  the missing cells count as 0, which can change how numpy breaks ties.

  Args:
    moments: `[N, 3]` (start, end, score), finite, each a distinct span (i, j) of a
      `num_clips`-clip map of a video of `duration` s: [i D/T, (j + 1) D/T).
  Returns:
    `[N, 3]` the same rows in 2D-TAN's order (descending score).
  """
  moments = np.asarray(moments, dtype=np.float64).reshape(-1, 3)
  if not len(moments):
    return moments
  clips = moments[:, :2] * (num_clips / duration)
  index = np.rint(clips).astype(np.int64)
  start, end = index[:, 0], index[:, 1] - 1
  if (np.abs(clips - index).max() > 1e-3 or start.min() < 0
      or end.max() >= num_clips or (start > end).any()):
    raise ValueError(f"moments are not spans of a {num_clips}-clip map of a "
                     f"{duration} s video (tie_order 2dtan needs 2D-map cells)")
  flat = start * num_clips + end
  if len(np.unique(flat)) != len(flat):
    raise ValueError("two moments share a map cell")
  grid = np.zeros(num_clips * num_clips, np.float32)
  grid[flat] = moments[:, 2]
  order = np.argsort(grid)[::-1]
  rank = np.empty(len(order), np.int64)
  rank[order] = np.arange(len(order))
  return moments[np.argsort(rank[flat])]


def grounding_metrics(predictions: Sequence[np.ndarray], gts: np.ndarray,
                      ns: Sequence[int], thresholds: Sequence[float]
                      ) -> dict[str, float]:
  """R@n,IoU=m for every n in `ns` and m in `thresholds`, and mIoU.

  Args:
    predictions: per query, `[K_q, >=2]` ranked moments, best first (K_q may be 0:
      the query then misses at every n and has IoU 0).
    gts: `[Q, 2]` ground-truth moments, or per query its windows `[W_q, 2]`
      (`windows_of`).

  Returns:
    Fractions in [0, 1] keyed like `"R@1,IoU=0.5"` and `"mIoU"`.
  """
  gts = windows_of(gts)
  if len(predictions) != len(gts):
    raise ValueError(f"{len(predictions)} prediction lists for {len(gts)} queries")
  if not len(gts):
    raise ValueError("no queries to evaluate")
  top = _top_ious(predictions, gts, max(ns))
  out = {}
  for n in ns:
    for m in thresholds:
      out[metric_name(n, m)] = float(np.mean((top[:, :n] >= m).any(axis=1)))
  out["mIoU"] = float(np.mean(top[:, 0]))
  return out


def per_query(predictions: Sequence[np.ndarray], gts: np.ndarray, metric: str) -> np.ndarray:
  """`[Q]` each query's share of `metric` (`grounding_metrics`' mean over queries):
  1.0 or 0.0 for a hit at `"R@n,IoU=m"`, the top-1 IoU for `"mIoU"`; `gts` as in
  `grounding_metrics`."""
  if metric == "mIoU":
    return _top_ious(predictions, gts, 1)[:, 0]
  recall = parse_recall(metric)
  if recall is None:
    raise ValueError(f"metric {metric!r}: R@n,IoU=m (e.g. R@1,IoU=0.5) or mIoU")
  n, m = recall
  return (_top_ious(predictions, gts, n) >= m).any(axis=1).astype(np.float64)


def metric_name(n: int, iou_threshold: float) -> str:
  return f"R@{n},IoU={threshold_key(iou_threshold)}"


def threshold_key(iou_threshold: float) -> str:
  """An IoU threshold as metric names write it, e.g. "0.5" (also the key of a
  prediction record's `pred_at`, `vmr_jax.evaluate`)."""
  return f"{iou_threshold:g}"


def parse_recall(metric: str) -> tuple[int, float] | None:
  """`"R@n,IoU=m"` -> (n, m); None for any other name (e.g. "mIoU")."""
  match = re.fullmatch(r"R@(\d+),IoU=([0-9.]+)", metric)
  return None if match is None else (int(match[1]), float(match[2]))


def windows_of(gts) -> list[np.ndarray]:
  """Ground truth as per-query windows: `[Q, 2]` moments, or a sequence of `[2]` or
  `[W_q, 2]` per query (e.g. `record_windows` of each record) -> a list of `[W_q, 2]`
  float64 arrays, W_q >= 1."""
  windows = [np.asarray(g, dtype=np.float64).reshape(-1, 2) for g in gts]
  if any(not len(w) for w in windows):
    raise ValueError("a query without a ground-truth window")
  return windows


def record_windows(record: Mapping) -> list:
  """A prediction record's (`vmr_jax.evaluate`) ground-truth windows `[[s, e], ...]`:
  its `gt_windows`, else `[gt]`."""
  return record.get("gt_windows", [record["gt"]])


def distinct_windows(windows: Sequence[Sequence[float]]) -> list[list[float]]:
  """`[[s, e], ...]` -> the same windows as float lists, each once, in first order
  (a record's `gt_windows`: a merged batch's padding repeats the first window)."""
  out: list[list[float]] = []
  for window in windows:
    window = [float(t) for t in window]
    if window not in out:
      out.append(window)
  return out


def _top_ious(predictions: Sequence[np.ndarray], gts, n: int) -> np.ndarray:
  """`[Q, n]` IoU of each query's top-n predictions with its nearest ground-truth
  window, 0 where missing."""
  gts = windows_of(gts)
  out = np.zeros((len(gts), n))
  for q, (pred, windows) in enumerate(zip(predictions, gts)):
    pred = np.asarray(pred, dtype=np.float64)
    top = pred[:n, :2] if pred.size else np.zeros((0, 2))
    out[q, :len(top)] = pairwise_iou(top, windows).max(axis=1, initial=0.0)
  return out


MAP_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
MAP_TOP_K = 10  # standalone_eval's max_pred_windows
R1_THRESHOLDS = (0.5, 0.7)
# standalone_eval's window length ranges (seconds, low < length <= high); "full" is
# every query with all its windows.
LENGTH_RANGES = (("short", 0.0, 10.0), ("middle", 10.0, 30.0), ("long", 30.0, 150.0))


def average_precision(prediction: np.ndarray, windows: np.ndarray,
                      thresholds: Sequence[float] = MAP_THRESHOLDS) -> np.ndarray:
  """Average precision `[len(thresholds)]` of one query's predictions against its
  windows, as Moment-DETR's standalone_eval computes it (its
  `compute_average_precision_detection`, ActivityNet's detection AP per query).

  The predictions are ranked by descending score (equal scores keep their order).
  At threshold t each in turn is a true positive when a window not yet matched has
  IoU >= t with it; the one with the largest IoU is then matched; otherwise it is a
  false positive. Equal IoUs are taken in the order of numpy's default
  `np.argsort(ious)[::-1]`, as standalone_eval takes them: not stable on every CPU
  (AVX-512 sorts), so only the same numpy on the same machine reproduces
  standalone_eval's matching there. With P_k the precision of the first k
  predictions and W windows,
  AP = (1 / W) * sum over the true positives k of max_{j >= k} P_j (the
  interpolated precision-recall area; recall counts every window, so a query with
  more windows than predictions stays below 1). No predictions: AP 0.

  Args:
    prediction: `[K, 3]` (start, end, score), e.g. a record's first `MAP_TOP_K`.
    windows: `[W, 2]` ground-truth windows, W >= 1.
  """
  pred = np.asarray(prediction, dtype=np.float64).reshape(-1, 3)
  windows = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
  pred = pred[np.argsort(-pred[:, 2], kind="stable")]
  ious = pairwise_iou(pred[:, :2], windows)  # [K, W]
  # Windows tried by descending IoU, each row sorted alone as standalone_eval does.
  order = [np.argsort(row)[::-1] for row in ious]
  ap = np.zeros(len(thresholds))
  for t, threshold in enumerate(thresholds):
    free = np.ones(len(windows), dtype=bool)
    hit = np.zeros(len(pred), dtype=bool)
    for k, tried in enumerate(order):
      found = tried[free[tried] & (ious[k, tried] >= threshold)]
      if len(found):
        free[found[0]], hit[k] = False, True
    if hit.any():
      precision = np.cumsum(hit) / np.arange(1, len(pred) + 1)
      envelope = np.maximum.accumulate(precision[::-1])[::-1]
      ap[t] = envelope[hit].sum() / len(windows)
  return ap


def moment_detr_metrics(predictions: Sequence[np.ndarray], gts) -> dict[str, float]:
  """Moment-DETR's standalone_eval moment retrieval metrics, its names, as fractions:

  - `MR-full-mAP`: the mean over queries and `MAP_THRESHOLDS` of `average_precision`
    of each query's first `MAP_TOP_K` predictions; `MR-full-mAP@0.5`, `@0.75`: at
    one threshold;
  - `MR-full-R1@0.5`, `@0.7`: the share of queries whose first prediction has IoU
    >= m with one of its windows (`R@1,IoU=m` of `grounding_metrics`);
  - `MR-{short,middle,long}-mAP`: `MR-full-mAP` over the queries with a window of
    that length (`LENGTH_RANGES`), against those windows only; absent where no
    query has one.

  standalone_eval leaves a query without predictions out of its mAP (and fails on
  it for R1); here it scores 0.

  Args:
    predictions: per query, `[K_q, 3]` ranked moments, best first (a record's `pred`).
    gts: per query its windows, as `grounding_metrics` takes them.
  """
  gts = windows_of(gts)
  if len(predictions) != len(gts) or not len(gts):
    raise ValueError(f"{len(predictions)} prediction lists for {len(gts)} queries")
  top = [np.asarray(p, dtype=np.float64).reshape(-1, 3)[:MAP_TOP_K] for p in predictions]
  ap = np.array([average_precision(p, w) for p, w in zip(top, gts)])  # [Q, thresholds]
  out = {"MR-full-mAP": float(ap.mean())}
  for m in (0.5, 0.75):
    out[f"MR-full-mAP@{threshold_key(m)}"] = float(ap[:, MAP_THRESHOLDS.index(m)].mean())
  first = _top_ious(top, gts, 1)[:, 0]
  for m in R1_THRESHOLDS:
    out[f"MR-full-R1@{threshold_key(m)}"] = float(np.mean(first >= m))
  for name, low, high in LENGTH_RANGES:
    in_range = [(p, w[(w[:, 1] - w[:, 0] > low) & (w[:, 1] - w[:, 0] <= high)])
                for p, w in zip(top, gts)]
    scores = [average_precision(p, w).mean() for p, w in in_range if len(w)]
    if scores:
      out[f"MR-{name}-mAP"] = float(np.mean(scores))
  return out


def summarize(metrics: Mapping[str, float]) -> str:
  """One line `R@1,IoU=0.5 41.20 | ... | mIoU 38.00` (percentages)."""
  return " | ".join(f"{k} {100 * v:.2f}" for k, v in metrics.items() if k != "num_queries")


def corpus_metrics(predictions: Sequence[Sequence[tuple[str, float, float]]],
                   gt_videos: Sequence[str], gts: np.ndarray, ks: Sequence[int],
                   thresholds: Sequence[float]) -> dict[str, float]:
  """Video corpus moment retrieval (Escorcia et al. 2019; TVR): per query, moments
  ranked over the whole collection.

  Args:
    predictions: per query, ranked `(video_id, start, end)`, best first.
    gt_videos: per query, its video; gts: `[Q, 2]` its moment (seconds), or per query
      its windows `[W_q, 2]` (`windows_of`; a moment then counts at its largest IoU
      with any of them).

  Returns:
    `"corpus R@k,IoU=m"`: the share of queries with a top-k moment in the right video
    at IoU >= m; `"video R@k"`: with the right video among the top-k moments' videos.
  """
  gts = windows_of(gts) if len(gts) else []
  if not (len(predictions) == len(gt_videos) == len(gts)) or not len(gts):
    raise ValueError(f"{len(predictions)} prediction lists, {len(gt_videos)} videos and "
                     f"{len(gts)} moments: need the same number, at least one")
  out = {}
  for k in ks:
    for m in thresholds:
      hits = [any(v == video and temporal_iou((s, e), gt).max() >= m
                  for v, s, e, *_ in ranked[:k])
              for ranked, video, gt in zip(predictions, gt_videos, gts)]
      out[f"corpus {metric_name(k, m)}"] = float(np.mean(hits))
  for k in ks:
    out[f"video R@{k}"] = float(np.mean([any(p[0] == video for p in ranked[:k])
                                         for ranked, video in zip(predictions, gt_videos)]))
  return out
