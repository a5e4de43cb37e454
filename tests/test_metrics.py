import itertools

import numpy as np
import pytest

from data_pipelines import chance
from vmr_jax import metrics


def brute_iou(a, b):
  """IoU by sampling-free interval arithmetic on one pair, written independently."""
  (s1, e1), (s2, e2) = a, b
  inter = max(0.0, min(e1, e2) - max(s1, s2))
  union = (e1 - s1) + (e2 - s2) - inter
  return inter / union if union > 0 else 0.0


def brute_nms(moments, threshold, top_k=None):
  remaining = sorted(enumerate(moments), key=lambda x: (-x[1][2], x[0]))
  kept = []
  for _, m in remaining:
    if all(brute_iou(m[:2], k[:2]) <= threshold for k in kept):
      kept.append(m)
      if top_k is not None and len(kept) == top_k:
        break
  return np.array(kept).reshape(-1, 3)


def random_moments(rng, n, duration=10.0):
  s = rng.uniform(0, duration, n)
  e = s + rng.uniform(0, duration / 2, n)
  return np.stack([s, e], -1)


@pytest.mark.parametrize("a,b,expected", [
    ((0, 2), (1, 3), 1 / 3),
    ((0, 1), (1, 2), 0.0),        # touching
    ((0, 4), (1, 2), 0.25),       # containment
    ((1, 1), (0, 2), 0.0),        # zero-length prediction
    ((1, 1), (1, 1), 0.0),        # both zero-length: defined as 0
    ((0, 2), (0, 2), 1.0),
    ((0, 1), (5, 6), 0.0),        # disjoint
])
def test_iou_hand_cases(a, b, expected):
  assert metrics.temporal_iou(np.array(a, float), np.array(b, float)) == pytest.approx(expected)


def test_iou_matches_brute_force_and_broadcasts():
  rng = np.random.default_rng(0)
  a, b = random_moments(rng, 50), random_moments(rng, 30)
  got = metrics.pairwise_iou(a, b)
  assert got.shape == (50, 30)
  want = np.array([[brute_iou(x, y) for y in b] for x in a])
  np.testing.assert_allclose(got, want, atol=1e-12)


def test_nms_matches_brute_force():
  rng = np.random.default_rng(1)
  for trial in range(30):
    m = np.concatenate([random_moments(rng, 40), rng.integers(0, 5, (40, 1))], -1)  # ties
    for thr in (0.3, 0.5, 0.7):
      for k in (None, 5):
        np.testing.assert_array_equal(metrics.nms(m, thr, k), brute_nms(m.tolist(), thr, k))


def test_nms_hand_case():
  m = np.array([[0, 10, 0.9], [1, 10, 0.8], [20, 30, 0.8], [0, 9, 0.95]])
  kept = metrics.nms(m, 0.5)
  np.testing.assert_array_equal(kept, [[0, 9, 0.95], [20, 30, 0.8]])
  # IoU exactly at the threshold is kept (suppression needs IoU > threshold)
  kept = metrics.nms(np.array([[0, 2, 1.0], [1, 3, 0.5]]), 1 / 3)
  assert len(kept) == 2
  assert metrics.nms(np.zeros((0, 3)), 0.5).shape == (0, 3)


def test_grounding_metrics_match_brute_force():
  rng = np.random.default_rng(2)
  gts = random_moments(rng, 200)
  preds = [random_moments(rng, int(rng.integers(0, 8))) for _ in gts]
  got = metrics.grounding_metrics(preds, gts, (1, 5), (0.1, 0.3, 0.5, 0.7))
  for n, m in itertools.product((1, 5), (0.1, 0.3, 0.5, 0.7)):
    hits = [any(brute_iou(p, g) >= m for p in pred[:n]) for pred, g in zip(preds, gts)]
    assert got[f"R@{n},IoU={m}"] == pytest.approx(np.mean(hits))
  top1 = [brute_iou(pred[0], g) if len(pred) else 0.0 for pred, g in zip(preds, gts)]
  assert got["mIoU"] == pytest.approx(np.mean(top1))


def test_grounding_metrics_hand_case():
  gts = np.array([[0.0, 10.0], [5.0, 7.0]])
  preds = [np.array([[0, 5, 0.9], [0, 10, 0.8]]),   # top-1 IoU 0.5 exactly, top-2 1.0
           np.array([[8, 9, 0.7]])]                  # misses
  got = metrics.grounding_metrics(preds, gts, (1, 5), (0.5, 0.7))
  assert got == {"R@1,IoU=0.5": 0.5, "R@1,IoU=0.7": 0.0, "R@5,IoU=0.5": 0.5,
                 "R@5,IoU=0.7": 0.5, "mIoU": 0.25}
  with pytest.raises(ValueError, match="2 queries"):
    metrics.grounding_metrics(preds[:1], gts, (1,), (0.5,))


def test_grid_moments():
  g = chance.grid_moments(4, 8.0)
  assert len(g) == 10
  np.testing.assert_allclose(g[0], [0, 2])
  np.testing.assert_allclose(g[-1], [6, 8])
  assert (g[:, 1] > g[:, 0]).all()


def test_chance_levels_match_simulation():
  rng = np.random.default_rng(3)
  durations = rng.uniform(20, 60, 40)
  gts = np.stack([durations * 0.2, durations * rng.uniform(0.3, 0.9, 40)], -1)
  levels = chance.chance_levels(gts, durations, 16, (1, 5), (0.3, 0.5))
  # Monte Carlo: rank the grid uniformly at random many times.
  draws = {k: [] for k in levels}
  for _ in range(400):
    preds = [chance.grid_moments(16, d)[rng.permutation(136)][:5] for d in durations]
    for k, v in metrics.grounding_metrics(preds, gts, (1, 5), (0.3, 0.5)).items():
      draws[k].append(v)
  for k, v in levels.items():
    assert np.mean(draws[k]) == pytest.approx(v, abs=0.02), k
  assert 0 < levels["R@1,IoU=0.5"] < levels["R@5,IoU=0.5"] < 1
  assert set(levels) == {metrics.metric_name(n, m) for n in (1, 5) for m in (0.3, 0.5)} | {
      "mIoU"}  # the library's names


def test_chance_levels_of_several_windows_per_query():
  """A query with several windows: a grid moment's IoU is its best with any of them,
  the same levels as `grounding_metrics` of the whole grid ranked at random."""
  rng = np.random.default_rng(4)
  durations = rng.uniform(20, 60, 12)
  windows = [np.sort(rng.uniform(0, d, (int(rng.integers(1, 4)), 2)), axis=1)
             for d in durations]
  levels = chance.chance_levels(windows, durations, 8, (1,), (0.3,))
  grids = [chance.grid_moments(8, d) for d in durations]
  per_moment = [metrics.pairwise_iou(g, w).max(axis=1) for g, w in zip(grids, windows)]
  assert levels["mIoU"] == pytest.approx(np.mean([m.mean() for m in per_moment]))
  assert levels["R@1,IoU=0.3"] == pytest.approx(np.mean([(m >= 0.3).mean()
                                                         for m in per_moment]))
  single = chance.chance_levels([w[:1] for w in windows], durations, 8, (1,), (0.3,))
  assert single == chance.chance_levels(np.array([w[0] for w in windows]), durations, 8,
                                        (1,), (0.3,))
  assert levels["R@1,IoU=0.3"] >= single["R@1,IoU=0.3"]


def test_metric_name():
  assert metrics.metric_name(1, 0.5) == "R@1,IoU=0.5"
  assert metrics.metric_name(5, 0.70) == "R@5,IoU=0.7"
