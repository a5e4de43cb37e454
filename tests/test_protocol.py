"""The evaluation protocol against brute-force re-statements of 2D-TAN's
(`lib/core/eval.py`, `moment_localization/train.py:get_proposal_results`) and CMHN's
released (`utils/tools.py` `Evaluate.start`) evaluation, written independently here.

Durations are powers of two over 128 clips, so every cell time is exact in binary and
both sides compute bit-identical IoUs between cells: an IoU exactly at the NMS
threshold (e.g. 1/2 at 0.5, which map cells often have) is then decided the same way
(not suppressed, strict `>`) on both sides. Ground truths are random reals, so no
prediction's IoU with one equals an IoU threshold (where our `>=` and 2D-TAN's `>`
would differ).
"""

import jax.numpy as jnp
import numpy as np
import pytest

from vmr_jax import evaluate, metrics
from vmr_jax.layers import moment_map
from vmr_jax.models import common

T = 128
SPANS = moment_map.sparse_spans(T, (16, 8, 8, 8))  # 2,548 inclusive cells (i, j)
THRESHOLDS = (0.3, 0.5, 0.7)


def iou(a, b):
  inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
  union = (a[1] - a[0]) + (b[1] - b[0]) - inter
  return inter / union if union > 0 else 0.0


def greedy_nms(ranked, threshold, keep):
  """Plain greedy NMS over a ranked list: suppressed when IoU > threshold."""
  kept = []
  for moment in ranked:
    if all(iou(moment, k) <= threshold for k in kept):
      kept.append(moment)
      if len(kept) == keep:
        break
  return kept


def tan_ranking(cell_scores, duration):
  """2D-TAN: the dense map (score x mask), argsort of its ravel reversed, i > j
  dropped; off-cells (score 0) stay in, as in its code. -> [(s, e, score)]."""
  grid = np.zeros((T, T), np.float32)
  grid[SPANS[:, 0], SPANS[:, 1]] = cell_scores
  order = np.argsort(grid.ravel())[::-1]
  i, j = np.unravel_index(order, (T, T))
  upper = i <= j
  i, j = i[upper], j[upper]
  step = duration / T
  return [(a * step, (b + 1) * step, float(grid[a, b])) for a, b in zip(i, j)]


def recall(preds, gts, n, m):
  return np.mean([any(iou(p, g) > m for p in pred[:n]) for pred, g in zip(preds, gts)])


def batch_of(gts, durations):
  """A video-level host batch of one query per video."""
  b = len(gts)
  return {"video_id": np.array([f"v{k}".encode() for k in range(b)]),
          "example_valid": np.ones(b, bool), "query_valid": np.ones((b, 1), bool),
          "query_index": np.zeros((b, 1), np.int32),
          "sentence": np.array([[b"q"]] * b), "duration": np.asarray(durations, np.float32),
          "gt_times": np.asarray(gts, np.float32)[:, None]}


def random_case(rng, queries, scores):
  durations = rng.choice([32.0, 64.0, 128.0, 256.0], queries)
  start = rng.uniform(0, 0.8, queries) * durations
  gts = np.stack([start, start + rng.uniform(0.02, 0.2, queries) * durations], -1)
  times = (SPANS + np.array([0, 1]))[None] * (durations / T)[:, None, None]
  return durations, gts.astype(np.float32).astype(np.float64), times, scores


def ours(scores, times, durations, gts, nms, top_k=0, **protocol):
  ranked = common.top_moments(jnp.asarray(scores[:, None], jnp.float32),
                              jnp.asarray(times, jnp.float32), top_k)
  records = evaluate.prediction_records(batch_of(gts, durations), np.asarray(ranked), nms, 5,
                                        num_clips=T, **protocol)
  return records, evaluate.metrics_of_records(records, (1, 5), THRESHOLDS)


def assert_matches_brute_force(scores, times, durations, gts, nms, tie_order):
  """Our records and R@1/R@5 equal 2D-TAN's ranking + greedy NMS over every cell;
  returns the brute force's kept moments."""
  records, result = ours(scores, times, durations, gts, nms, tie_order=tie_order)
  brute = [greedy_nms(tan_ranking(s, d), nms, 5) for s, d in zip(scores, durations)]
  for record, kept in zip(records, brute):
    np.testing.assert_allclose(record["pred"], kept, rtol=1e-6)
  for n in (1, 5):
    for m in THRESHOLDS:
      assert result[metrics.metric_name(n, m)] == recall(brute, gts, n, m)
  return result, brute


@pytest.mark.parametrize("nms", [0.4, 0.5])
@pytest.mark.parametrize("tie_order", ["index", "2dtan"])
def test_matches_2dtan_on_a_sparse_map(nms, tie_order):
  rng = np.random.default_rng(0)
  scores = (1 / (1 + np.exp(-rng.normal(0, 2, (20, len(SPANS)))))).astype(np.float32)
  durations, gts, times, scores = random_case(rng, 20, scores)
  result, brute = assert_matches_brute_force(scores, times, durations, gts, nms, tie_order)
  assert result["mIoU"] == pytest.approx(np.mean([iou(k[0], g) for k, g in zip(brute, gts)]))


def test_ties_ordered_as_2dtan():
  rng = np.random.default_rng(1)
  tied = np.round(rng.uniform(0.1, 0.9, (20, len(SPANS))), 1).astype(np.float32)
  tied[0] = 0.5  # all equal
  durations, gts, times, scores = random_case(rng, 20, tied)
  ranked = np.asarray(common.top_moments(jnp.asarray(scores[:, None]),
                                         jnp.asarray(times, jnp.float32), 0))[:, 0]
  differs = False
  for q in range(20):
    ordered = metrics.map_order(ranked[q], durations[q], T)
    expected = [m for m in tan_ranking(scores[q], durations[q]) if m[2] > 0]
    np.testing.assert_allclose(ordered, expected, rtol=1e-6)
    differs |= not np.array_equal(ordered, ranked[q])
  assert differs  # the index order is not 2D-TAN's
  # The whole pipeline on the tied maps.
  for nms in (0.4, 0.5):
    assert_matches_brute_force(scores, times, durations, gts, nms, "2dtan")


def test_map_order_rejects_non_grid_moments():
  with pytest.raises(ValueError):
    metrics.map_order(np.array([[0.3, 1.7, 0.5]]), 10.0, 8)


def test_nms_offset_is_cmhns_protocol():
  rng = np.random.default_rng(2)
  b, q, n = 6, 4, 300
  start = rng.uniform(0, 50, (b, n))
  moments = np.stack([start, start + rng.uniform(0.5, 30, (b, n))], -1)
  scores = rng.normal(size=(b, q, n)).astype(np.float32)
  gts = np.sort(rng.uniform(0, 60, (b, q, 2)), -1)
  valid = rng.uniform(size=(b, q)) < 0.8
  valid[0] = True
  batch = {"video_id": np.array([f"v{k}".encode() for k in range(b)]),
           "example_valid": np.ones(b, bool), "query_valid": valid,
           "query_index": np.tile(np.arange(q, dtype=np.int32), (b, 1)),
           "sentence": np.full((b, q), b"q"), "duration": np.full(b, 80.0, np.float32),
           "gt_times": gts}
  ranked = np.asarray(common.top_moments(jnp.asarray(scores), jnp.asarray(moments), 0))
  records = evaluate.prediction_records(batch, ranked, 1.0, 5, nms_offset=0.05,
                                        thresholds=THRESHOLDS)
  result = evaluate.metrics_of_records(records, (1, 5), THRESHOLDS)
  lists, truths = [], []
  for v, k in zip(*np.nonzero(valid)):
    order = np.argsort(-scores[v, k], kind="stable")
    lists.append([(*moments[v, c], scores[v, k, c]) for c in order])
    truths.append(gts[v, k])
  for m in THRESHOLDS:
    kept = [greedy_nms(ranking, m - 0.05, 5) for ranking in lists]
    for top in (1, 5):
      hits = [any(iou(p, g) >= m for p in pred[:top]) for pred, g in zip(kept, truths)]
      assert result[metrics.metric_name(top, m)] == pytest.approx(np.mean(hits))
  assert result["mIoU"] == pytest.approx(np.mean([iou(r[0], g) for r, g in zip(lists, truths)]))
  # pred keeps the fixed threshold (1.0: no suppression, the top 5 as ranked).
  np.testing.assert_allclose([r["pred"] for r in records],
                             [ranking[:5] for ranking in lists], rtol=1e-6)


def test_top_k_cut_leaves_queries_short():
  rng = np.random.default_rng(3)
  # A trained map's look: scores peak around one moment (IoU with it, plus noise),
  # so the 50 best cells overlap each other heavily.
  start = rng.uniform(0, 96, 20)
  target = np.stack([start, start + rng.uniform(8, 32, 20)], -1)
  cells = SPANS + np.array([0, 1])
  scores = np.array([[iou(c, t) for c in cells] for t in target])
  scores = (scores + rng.uniform(0, 1e-3, scores.shape)).astype(np.float32)
  durations, gts, times, scores = random_case(rng, 20, scores)
  cut, _ = ours(scores, times, durations, gts, 0.4, top_k=50)
  full, _ = ours(scores, times, durations, gts, 0.4, top_k=0)
  assert all(len(r["pred"]) == 5 for r in full)
  assert any(len(r["pred"]) < 5 for r in cut)


def test_top_moments_k():
  scores = jnp.asarray(np.random.default_rng(4).normal(size=(2, 3, 7)), jnp.float32)
  times = jnp.zeros((2, 7, 2))
  for k in (0, -1, 7, 100):
    out = common.top_moments(scores, times, k)
    assert out.shape == (2, 3, 7, 3)
    assert (np.diff(np.asarray(out[..., 2]), axis=-1) <= 0).all()
  assert common.top_moments(scores, times, 3).shape == (2, 3, 3, 3)
