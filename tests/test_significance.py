"""`vmr_jax.tools.significance` against direct computations, and the bag-of-words baseline's
method (`vmr_jax.tools.word_regression`) on batches where the answer is known."""

import subprocess
import sys

import numpy as np
import pytest

from vmr_jax.tools import word_regression
from vmr_jax import evaluate, metrics
from vmr_jax.tools import significance
from tests.conftest import REPO


def records(hits_by_video, seed=0):
  """Prediction records: per video a list of hit (True) / miss (False) queries; a hit
  predicts the ground truth itself, a miss a disjoint moment."""
  rng = np.random.default_rng(seed)
  out = {}
  for v, hits in enumerate(hits_by_video):
    for q, hit in enumerate(hits):
      start = float(rng.uniform(0, 10))
      pred = [start, start + 2] if hit else [start + 3, start + 5]
      out[(f"v{v}", q)] = {"video": f"v{v}", "query_index": q, "sentence": "s",
                           "duration": 12.0, "gt": [start, start + 2], "pred": [pred + [1.0]]}
  return out


def test_per_query_values_average_to_the_metrics():
  rng = np.random.default_rng(0)
  gts = np.sort(rng.uniform(0, 10, (30, 2)), 1)
  preds = [np.concatenate([np.sort(rng.uniform(0, 10, (k, 2)), 1), rng.normal(size=(k, 1))], 1)
           for k in rng.integers(0, 6, 30)]
  want = metrics.grounding_metrics(preds, gts, (1, 5), (0.3, 0.5))
  for name, value in want.items():
    assert np.mean(metrics.per_query(preds, gts, name)) == pytest.approx(value)
  with pytest.raises(ValueError, match="R@n,IoU=m"):
    metrics.per_query(preds, gts, "R@1")


def test_one_query_per_video_gives_the_sample_standard_error():
  """With clusters of one, the clustered SE is std(ddof=1) / sqrt(k)."""
  hits = [[h] for h in [True, False, False, True, True, False, False, False]]
  result = significance.compare(records(hits), None, "R@1,IoU=0.5")
  values = np.array([h[0] for h in hits], float)
  assert result["a"] == pytest.approx(values.mean())
  assert result["a_se"] == pytest.approx(values.std(ddof=1) / np.sqrt(len(values)))


def test_correlated_videos_widen_the_error_and_pairing_narrows_the_difference():
  """Two videos all hit, two all missed: the same recall as alternating hits, with a
  larger SE. A second run that differs on one query: difference 1/N, by the formula."""
  clustered = [[True] * 10, [True] * 10, [False] * 10, [False] * 10]
  spread = [[True, False] * 5] * 4
  a = significance.compare(records(clustered), None, "R@1,IoU=0.5")
  b = significance.compare(records(spread), None, "R@1,IoU=0.5")
  assert a["a"] == b["a"] == 0.5 and a["a_se_independent"] == b["a_se_independent"]
  assert a["a_se"] == pytest.approx(np.sqrt(4 / 3 * 4 * 25) / 40) and b["a_se"] == 0.0
  changed = [list(h) for h in clustered]
  changed[2][0] = True
  result = significance.compare(records(changed), records(clustered), "R@1,IoU=0.5")
  assert result["difference"] == pytest.approx(1 / 40)
  d = np.array([0, 0, 1, 0]) - 10 / 40  # per-video sums minus mean x counts
  assert result["difference_se"] == pytest.approx(np.sqrt(4 / 3 * np.sum(d ** 2)) / 40)
  assert result["difference_se"] < result["a_se"]
  with pytest.raises(ValueError, match="different queries"):
    significance.compare(records(clustered), records(clustered[:3]), "mIoU")


def test_command_reads_evaluation_files(tmp_path):
  paths = []
  for name, hits in (("a", [[True, True], [False, True]]), ("b", [[True, False], [False, True]])):
    evaluate.write(str(tmp_path / name), "test", {}, list(records(hits).values()))
    paths.append(str(tmp_path / name / "eval" / "test_predictions.jsonl"))
  out = subprocess.run([sys.executable, "-m", "vmr_jax.tools.significance", *paths], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert f"{paths[0]}: R@1,IoU=0.5 75.00 +- " in out.stdout
  assert "difference (first - second, paired by video): +25.00 +- 25.00" in out.stdout


def test_merge_duplicates_scores_a_sentence_once_on_its_best_window(tmp_path):
  """Video v0 says "a" twice: the first prediction misses its own window but hits the
  second's, so merged the sentence is one hit; "b" (once) and v1's "a" are left as
  they were."""
  rows = [("v0", "a", 0, [0.0, 2.0], [5.0, 7.0]), ("v0", "b", 1, [3.0, 4.0], [3.0, 4.0]),
          ("v0", "a", 2, [5.0, 7.0], [5.0, 7.0]), ("v1", "a", 0, [1.0, 2.0], [1.0, 2.0])]
  records = {(video, i): {"video": video, "query_index": i, "sentence": sentence,
                          "duration": 10.0, "gt": gt, "pred": [pred + [1.0]]}
             for video, sentence, i, gt, pred in rows}
  merged = significance.merge_duplicates(records)
  assert sorted(merged) == [("v0", 0), ("v0", 1), ("v1", 0)]
  assert merged[("v0", 0)]["gt_windows"] == [[0.0, 2.0], [5.0, 7.0]]
  assert merged[("v0", 1)]["gt_windows"] == [[3.0, 4.0]]
  assert significance.merge_duplicates(merged) == merged
  np.testing.assert_array_equal(significance.query_values(list(records.values()), "R@1,IoU=0.5"),
                                [0, 1, 1, 1])
  np.testing.assert_array_equal(significance.query_values(list(merged.values()), "R@1,IoU=0.5"),
                                [1, 1, 1])
  evaluate.write(str(tmp_path), "test", {}, list(records.values()))
  path = str(tmp_path / "eval" / "test_predictions.jsonl")
  out = subprocess.run([sys.executable, "-m", "vmr_jax.tools.significance", path,
                        "--merge_duplicates"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "R@1,IoU=0.5 100.00 +- " in out.stdout and "3 queries" in out.stdout


def baseline_batches(rng, videos, clips=16, dim=32, vocab=6):
  """Host batches (one video each) in which word w's clips carry the direction e_w:
  query q of a video names one word and spans that word's clips."""
  batches = []
  for v in range(videos):
    feats = 0.1 * rng.normal(size=(clips, dim))
    words = rng.permutation(vocab)[:2]
    starts = [0, clips // 2]
    gts = []
    for w, start in zip(words, starts):
      length = int(rng.integers(2, clips // 2))
      feats[start:start + length, w] += 1.0
      gts.append([start, start + length])
    q = len(words)
    batches.append({
        "video_id": np.array([f"v{v}".encode()], object), "duration": np.array([clips], np.float32),
        "video_feats": feats[None].astype(np.float32), "example_valid": np.array([True]),
        "query_valid": np.array([[True] * q + [False]]),
        "gt_times": np.array([gts + [[0, 0]]], np.float32),
        "sentence": np.array([[b"w"] * (q + 1)], object),
        "query_tokens": np.array([[[w, 0] for w in words] + [[0, 0]]], np.int32),
        "query_mask": np.array([[[True, False]] * q + [[False, False]]]),
        "query_index": np.arange(q + 1, dtype=np.int32)[None]})
  return batches


def test_baseline_finds_the_spans_of_the_words_it_was_fitted_on():
  rng = np.random.default_rng(0)
  train = baseline_batches(rng, 12)
  w = word_regression.fit(train, vocab_size=6, ridge=1.0)
  offset, scores = word_regression.choose_offset(train, w)
  assert set(scores) == set(word_regression.OFFSETS) and scores[offset] == max(scores.values())
  test = baseline_batches(rng, 4)
  found = word_regression.rank(test, w, offset=0.5, top_n=5)
  assert len(found) == 8 and all(len(r["pred"]) <= 5 for r in found)
  result = evaluate.metrics_of_records(found, (1,), (0.7,))
  assert result["R@1,IoU=0.7"] == 1.0, [(r["gt"], r["pred"][0]) for r in found]
  shuffled = word_regression.rank(test, w[:, ::-1], offset=0.5, top_n=1)  # words swapped
  assert evaluate.metrics_of_records(shuffled, (1,), (0.7,))["R@1,IoU=0.7"] < 0.5
