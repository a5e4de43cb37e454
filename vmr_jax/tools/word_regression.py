"""The bag-of-words baseline's method (`python -m vmr_jax.tools.bow_baseline` runs it):
a ridge regression from clip features to words, fitted on the training split.

1. Fit (training split): ridge regression W `[D, V]` from a clip's features to the
   words of the sentences whose spans cover it: target row t = sum over queries q of
   c_qt x bag-of-words(q) / |words(q)|, c_qt the fraction of clip t inside q's spans
   (`shaped_features.coverage`, as the generator computes it; every window of a
   query with several).
2. Score (any split): a query's clip relevance r_t = mean over its words w of
   (x_t W)_w, standardized within the video (z_t); the span (i, j) of the clip grid
   scores sum_{t=i..j} (z_t - c), the most relevant stretch of clips. The offset c is
   the one of `OFFSETS` with the best training R@1,IoU=0.5 (`choose_offset`).
Batches are the input pipeline's host batches of one video each
(`Pipeline.eval_iterator(split, 1)`); predictions are the models' evaluation records
(`vmr_jax.evaluate.prediction_records`).
"""

from __future__ import annotations

import numpy as np

from data_pipelines import shaped_features
from vmr_jax import evaluate, metrics
from vmr_jax.layers.moment_map import dense_spans

OFFSETS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def bags(tokens: np.ndarray, mask: np.ndarray, vocab_size: int) -> np.ndarray:
  """`[Q, L]` word ids -> `[Q, V]` bags of words, each row summing to 1."""
  out = np.zeros((len(tokens), vocab_size), np.float32)
  for q, (ids, m) in enumerate(zip(tokens, mask)):
    np.add.at(out[q], ids[m], 1.0)
  return out / np.maximum(out.sum(1, keepdims=True), 1.0)


def fit(batches, vocab_size: int, ridge: float) -> np.ndarray:
  """The ridge regression `[D, V]` of clip word targets on clip features (every
  window of a query covers its clips: `gt_windows` where the batches have them),
  accumulated as X^T X and X^T Y over the batches."""
  xtx = xty = 0.0
  for b in batches:
    x = b["video_feats"][0].astype(np.float64)
    valid = np.flatnonzero(b["query_valid"][0])
    cover = np.stack([
        shaped_features.coverage(np.asarray(metrics.distinct_windows(windows)),
                                 float(b["duration"][0]), len(x)).sum(0)
        for windows in query_windows(b, valid)])  # [Q, T]
    y = cover.T @ bags(b["query_tokens"][0][valid], b["query_mask"][0][valid], vocab_size)
    xtx, xty = xtx + x.T @ x, xty + x.T @ y
  return np.linalg.solve(xtx + ridge * np.eye(len(xtx)), xty)


def query_windows(batch, queries: np.ndarray) -> np.ndarray:
  """`[len(queries), K, 2]` windows of the given queries of a one-video batch:
  `gt_windows` (merged duplicates, padding repeating the first) or `gt_times`."""
  if "gt_windows" in batch:
    return batch["gt_windows"][0][queries]
  return batch["gt_times"][0][queries][:, None]


def rank(batches, w: np.ndarray, offset: float, top_n: int) -> list[dict]:
  """Prediction records (`vmr_jax.evaluate.prediction_records`: the top 50 spans by
  score, then NMS 0.5, `top_n` kept) of every query of `batches`."""
  records = []
  for batch in batches:
    feats = batch["video_feats"][0]
    clips, duration = len(feats), float(batch["duration"][0])
    spans = dense_spans(clips)
    times = np.stack([spans[:, 0], spans[:, 1] + 1], 1) * duration / clips
    relevance = feats @ w  # [T, V]
    ranked = np.full(batch["query_valid"].shape + (50, 3), -np.inf)  # [1, Q, 50, 3]
    for q in np.flatnonzero(batch["query_valid"][0]):
      r = relevance[:, batch["query_tokens"][0, q][batch["query_mask"][0, q]]].mean(1)
      z = (r - r.mean()) / max(r.std(), 1e-9) - offset
      cumulative = np.concatenate([[0.0], np.cumsum(z)])
      score = cumulative[spans[:, 1] + 1] - cumulative[spans[:, 0]]
      best = np.argsort(-score, kind="stable")[:50]
      ranked[0, q] = np.concatenate([times[best], score[best, None]], 1)
    records += evaluate.prediction_records(batch, ranked, 0.5, top_n)
  return records


def choose_offset(train_batches, w: np.ndarray) -> tuple[float, dict[float, float]]:
  """The offset c of `OFFSETS` with the best training R@1,IoU=0.5, and that figure for
  every c."""
  scores = {c: evaluate.metrics_of_records(rank(train_batches, w, c, 1), (1,),
                                           (0.5,))["R@1,IoU=0.5"] for c in OFFSETS}
  return max(OFFSETS, key=lambda c: scores[c]), scores
