"""Several ground-truth windows per query (`gt_windows`, `data.duplicate_sentences =
"merge"`) in every model's loss: `common.target_iou` and `common.matched_window`
against brute force, and each variant's loss reading every window while a batch of
equal windows trains exactly as its single window."""

import jax
import numpy as np
import pytest

from vmr_jax import metrics, registry
from vmr_jax.models import common

from tests.models import VARIANTS, small_model, small_model_config, small_padded_batch

K = 3  # windows per query in the model tests


def random_segments(rng, shape, duration=10.0):
  start = rng.uniform(0, 0.8 * duration, shape)
  return np.stack([start, start + rng.uniform(0.05, 0.4, shape) * duration], -1)


def brute_iou(a, b):
  return float(metrics.temporal_iou(np.asarray(a), np.asarray(b)))


def brute_match(segment, windows):
  """(the window of the largest IoU, first on ties; whether the best is clear)."""
  ious = [brute_iou(segment, w) for w in windows]
  best = int(np.argmax(ious))
  others = [x for i, x in enumerate(ious) if i != best]
  return windows[best], not others or ious[best] - max(others) > 1e-5


def test_target_iou_against_brute_force():
  rng = np.random.default_rng(0)
  times = random_segments(rng, (2, 9)).astype(np.float32)
  windows = random_segments(rng, (2, 3, 4)).astype(np.float32)
  windows[:, :, 3] = windows[:, :, 0]  # padding repeats the first
  got = np.asarray(common.target_iou(times, {"gt_windows": windows,
                                             "gt_times": windows[:, :, 0]}))
  want = [[[max(brute_iou(times[b, n], w) for w in windows[b, q]) for q in range(3)]
           for n in range(9)] for b in range(2)]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # query-level batches: gt_times [B, 2], gt_windows [B, K, 2] -> [B, N]
  got = np.asarray(common.target_iou(times, {"gt_windows": windows[:, 0],
                                             "gt_times": windows[:, 0, 0]}))
  np.testing.assert_allclose(got, np.asarray(want)[..., 0], rtol=1e-5, atol=1e-6)
  single = np.asarray(common.target_iou(times, {"gt_times": windows[:, 0, 0]}))
  np.testing.assert_allclose(single, [[brute_iou(times[b, n], windows[b, 0, 0])
                                       for n in range(9)] for b in range(2)],
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", ["video", "video_candidates", "query_candidates"])
def test_matched_window_against_brute_force(layout):
  """Video-level predictions `[B, Q, 2]`, candidates per query `[B, Q, N, 2]` and
  query-level candidates `[B, N, 2]`: the window of the largest IoU, the first where
  several tie (padding, or a segment overlapping none)."""
  rng = np.random.default_rng(1)
  windows = random_segments(rng, (3, 4, 5)).astype(np.float32)  # [B, Q, K, 2]
  windows[:, :, 4] = windows[:, :, 0]
  if layout == "video":
    times = random_segments(rng, (3, 4)).astype(np.float32)
    times[0, 0] = windows[0, 0, 2]  # exactly a later window
    queries = lambda i: windows[i[0], i[1]]
  elif layout == "video_candidates":
    times = random_segments(rng, (3, 4, 6)).astype(np.float32)
    queries = lambda i: windows[i[0], i[1]]
  else:
    windows = windows[:, 0]  # [B, K, 2]
    times = random_segments(rng, (3, 6)).astype(np.float32)
    queries = lambda i: windows[i[0]]
  batch = {"gt_windows": windows, "gt_times": windows[..., 0, :]}
  got = np.asarray(common.matched_window(times, batch))
  assert got.shape == times.shape
  clear = 0
  for i in np.ndindex(times.shape[:-1]):
    want, is_clear = brute_match(times[i], queries(i))
    if is_clear:
      clear += 1
      np.testing.assert_array_equal(got[i], want)
    else:  # a tie: the first of the best (exactly, where nothing overlaps)
      assert any((got[i] == w).all() for w in queries(i))
      ious = [brute_iou(times[i], w) for w in queries(i)]
      assert brute_iou(times[i], got[i]) == pytest.approx(max(ious), abs=1e-5)
      if max(ious) == 0:
        np.testing.assert_array_equal(got[i], queries(i)[0])
  assert clear > times.size // 4
  if layout == "video":
    np.testing.assert_array_equal(got[0, 0], windows[0, 0, 2])
  # no gt_windows: gt_times as it is, broadcast over the extra axes
  alone = np.asarray(common.matched_window(times, {"gt_times": batch["gt_times"]}))
  extra = times.ndim - batch["gt_times"].ndim
  np.testing.assert_array_equal(alone, np.broadcast_to(
      batch["gt_times"].reshape(*batch["gt_times"].shape[:-1], *(1,) * extra, 2),
      times.shape))


# The terms that regress a boundary towards the matched window.
REGRESSION_TERMS = {"fian": ("boundary",), "hscnet": ("grounding", "sentence")}


@pytest.fixture(params=VARIANTS)
def model_outputs(request):
  """(variant, config, the loss of fixed training outputs as a function of the
  batch (jitted), the batch)."""
  config = small_model_config(request.param)
  batch = small_padded_batch(config)
  spec, model, variables = small_model(config, batch)
  outputs, _ = jax.jit(lambda v, b: model.module.apply(
      v, b, train=True, rngs={"dropout": jax.random.PRNGKey(0)},
      mutable=["batch_stats"]))(variables, batch)
  loss = jax.jit(lambda b: spec.loss(outputs, b, config))
  return request.param, loss, batch


def with_windows(batch, windows):
  return {**batch, "gt_windows": windows.astype(np.float32)}


def test_every_window_reaches_the_loss(model_outputs):
  """Equal windows: exactly the single-window loss and terms. Moving any non-first
  window changes the loss (and the regression terms that match a window)."""
  variant, loss, batch = model_outputs
  gt = batch["gt_times"]  # [B, Q, 2] or [B, 2]
  value, terms = loss(batch)
  same, same_terms = loss(with_windows(batch, np.repeat(gt[..., None, :], K, -2)))
  assert np.asarray(same) == np.asarray(value), variant
  for name in terms:
    assert np.asarray(same_terms[name]) == np.asarray(terms[name]), (variant, name)

  rng = np.random.default_rng(2)
  duration = batch["duration"].reshape(-1, *(1,) * (gt.ndim - 1))
  others = [random_segments(rng, gt.shape[:-1], 1.0) * duration
            for _ in range(K - 1)]
  windows = np.stack([gt, *others], -2)
  base, base_terms = loss(with_windows(batch, windows))
  assert np.isfinite(float(base))
  for k in range(1, K):
    moved = windows.copy()
    moved[..., k, :] = random_segments(rng, gt.shape[:-1], 1.0) * duration
    value, terms = loss(with_windows(batch, moved))
    assert float(value) != float(base), (variant, k)
    for name in REGRESSION_TERMS.get(variant.split("/")[0], ()):
      assert float(terms[name]) != float(base_terms[name]), (variant, k, name)
