"""Moment-DETR's standalone_eval moment retrieval metrics (`metrics.moment_detr_metrics`:
mAP over IoU 0.5:0.05:0.95 of the top 10, R1@0.5/0.7, mAP by window length) against
a brute-force statement of their definition written here, with one and several
windows per query; and the evaluation's records and submission file on a `jsonl`
build (the release's qids, the top 10 written).

Times are random reals, so no two IoUs are equal (standalone_eval orders equal IoUs
by numpy's unstable argsort) and none equals a threshold.
"""

import json

import ml_collections
import numpy as np
import pytest

from vmr_jax.configs import default
from data_pipelines import build
from data_pipelines import input_pipeline as ip
from vmr_jax import evaluate, metrics
from tests.release_files import write_jsonl_release

THRESHOLDS = [0.5 + 0.05 * i for i in range(10)]
RANGES = {"short": (0, 10), "middle": (10, 30), "long": (30, 150)}


def iou(a, b):
  inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
  union = (a[1] - a[0]) + (b[1] - b[0]) - inter
  return inter / union if union > 0 else 0.0


def brute_ap(preds, windows, t):
  """The area under the interpolated precision-recall curve of the first 10
  predictions (by score) against all windows; each prediction in turn matched to the
  unmatched window of largest IoU >= t, if any."""
  ranked = sorted(list(preds)[:10], key=lambda p: -p[2])
  matched, curve = set(), []
  for k, p in enumerate(ranked, start=1):
    open_ = [j for j in range(len(windows)) if j not in matched and iou(p, windows[j]) >= t]
    if open_:
      matched.add(max(open_, key=lambda j: iou(p, windows[j])))
    curve.append((len(matched) / len(windows), len(matched) / k))  # (recall, precision)
  area, reached = 0.0, 0.0
  for recall, _ in curve:
    if recall > reached:
      area += (recall - reached) * max(p for r, p in curve if r >= recall)
      reached = recall
  return area


def brute_metrics(preds, windows):
  """standalone_eval's brief MR keys, as fractions."""
  def mean_ap(queries):
    return np.mean([np.mean([brute_ap(p, w, t) for t in THRESHOLDS]) for p, w in queries])
  queries = list(zip(preds, windows))
  out = {"MR-full-mAP": mean_ap(queries),
         "MR-full-mAP@0.5": np.mean([brute_ap(p, w, 0.5) for p, w in queries]),
         "MR-full-mAP@0.75": np.mean([brute_ap(p, w, 0.75) for p, w in queries])}
  for m in (0.5, 0.7):
    out[f"MR-full-R1@{m}"] = np.mean([max(iou(p[0], g) for g in w) >= m for p, w in queries])
  for name, (low, high) in RANGES.items():
    kept = [(p, [g for g in w if low < g[1] - g[0] <= high]) for p, w in queries]
    kept = [(p, w) for p, w in kept if w]
    if kept:
      out[f"MR-{name}-mAP"] = mean_ap(kept)
  return out


def random_queries(rng, n, max_windows=6):
  """Per query: windows in a 150 s video (1 to 60 s long, so every length range
  occurs) and 1 to 14 ranked predictions, most near one of its windows."""
  preds, windows = [], []
  for _ in range(n):
    w = []
    for _ in range(int(rng.integers(1, max_windows + 1))):
      start = rng.uniform(0, 140)
      w.append([start, min(150.0, start + rng.uniform(1, 60))])
    p = []
    for _ in range(int(rng.integers(1, 15))):
      s, e = w[int(rng.integers(len(w)))]
      jitter = rng.normal(0, 0.1 * (e - s) + 0.5, 2) if rng.uniform() < 0.8 else (
          rng.uniform(-50, 50, 2))
      start = float(np.clip(s + jitter[0], 0, 149))
      p.append([start, float(np.clip(e + jitter[1], start + 0.1, 150)), rng.uniform()])
    p.sort(key=lambda x: -x[2])
    preds.append(p)
    windows.append(w)
  return preds, windows


def test_hand_case():
  """Two windows, three predictions: the second finds only a window already matched
  (a false positive), the third the other: AP = (1 + 2/3) / 2 at every threshold;
  one perfect prediction of three windows: AP 1/3."""
  windows = [[0, 10], [20, 30]]
  preds = [[0, 10, 0.9], [1, 10, 0.8], [20, 30, 0.7]]
  np.testing.assert_allclose(metrics.average_precision(preds, windows), [5 / 6] * 10)
  np.testing.assert_allclose(metrics.average_precision([[0, 10, 1]], windows + [[40, 50]]),
                             [1 / 3] * 10)
  # Ranked by score, not by position: the same predictions listed the other way round.
  np.testing.assert_allclose(metrics.average_precision(preds[::-1], windows), [5 / 6] * 10)
  # IoU 0.9: a hit up to 0.9, not at 0.95.
  np.testing.assert_allclose(metrics.average_precision([[1, 10, 1]], [[0, 10]]),
                             [1] * 9 + [0])
  assert metrics.average_precision(np.zeros((0, 3)), windows).tolist() == [0] * 10


def test_top_10_cut():
  """Only the first 10 predictions count: an 11th that matches adds nothing."""
  preds = [[50 + i, 51 + i, 1 - i / 100] for i in range(10)] + [[0, 10, 0.5]]
  result = metrics.moment_detr_metrics([preds], [[[0, 10]]])
  assert result["MR-full-mAP"] == 0 and result["MR-full-R1@0.5"] == 0
  assert metrics.moment_detr_metrics([preds[-1:]], [[[0, 10]]])["MR-full-mAP"] == 1


@pytest.mark.parametrize("max_windows", [1, 6])
def test_matches_brute_force(max_windows):
  preds, windows = random_queries(np.random.default_rng(max_windows), 300, max_windows)
  got = metrics.moment_detr_metrics(preds, windows)
  want = brute_metrics(preds, windows)
  assert set(got) == set(want) == {
      "MR-full-mAP", "MR-full-mAP@0.5", "MR-full-mAP@0.75", "MR-full-R1@0.5",
      "MR-full-R1@0.7", "MR-short-mAP", "MR-middle-mAP", "MR-long-mAP"}
  for name, value in want.items():
    assert got[name] == pytest.approx(value, abs=1e-12), name
  assert 0.05 < got["MR-full-mAP"] < got["MR-full-mAP@0.5"] < 1


def test_single_window_metrics_unchanged():
  """The R@n and mIoU of single-window records are the same with Moment-DETR's metrics
  added, and R1@m is R@1,IoU=m."""
  preds, windows = random_queries(np.random.default_rng(7), 100, max_windows=1)
  records = [{"gt": w[0], "pred": p[:5]} for p, w in zip(preds, windows)]
  plain = evaluate.metrics_of_records(records, (1, 5), (0.5, 0.7))
  both = evaluate.metrics_of_records(records, (1, 5), (0.5, 0.7), moment_detr=True)
  assert set(plain) == {"R@1,IoU=0.5", "R@1,IoU=0.7", "R@5,IoU=0.5", "R@5,IoU=0.7",
                        "mIoU", "num_queries"}
  assert {k: both[k] for k in plain} == plain
  assert both["MR-full-R1@0.5"] == plain["R@1,IoU=0.5"]
  assert both["MR-full-R1@0.7"] == plain["R@1,IoU=0.7"]


def test_moments_kept():
  config = default.get_config()
  assert not evaluate.moment_detr_on(config, {})
  assert evaluate.moment_detr_on(config, {"moment_detr_metrics": True})
  older = ml_collections.ConfigDict({"eval": {"recall_at": (1, 5)}})  # no such field
  assert not evaluate.moment_detr_on(older, {})
  config.eval.moment_detr_metrics = True
  assert evaluate.moment_detr_on(config, {})
  assert evaluate.moments_kept((1, 5), False) == 5
  assert evaluate.moments_kept((1, 5), True) == 10
  assert evaluate.moments_kept((1, 20), True) == 20


def test_records_and_submission_of_a_jsonl_build(tmp_path, tmp_path_factory,
                                                 real_annotations):
  """Evaluation's host side on a built jsonl dataset: records carry the release's qid
  and every window, the submission file the top 10 and those windows, and its mAP is
  the brute force's on the submission's own lines."""
  written = write_jsonl_release(tmp_path, real_annotations)
  data_dir = tmp_path_factory.mktemp("tfds")
  build.build("jsonl", str(data_dir), jsonl={
      "annotations": [str(tmp_path / f"highlight_{s}_release.jsonl")
                      for s in ("train", "val")],
      "features": [str(tmp_path / "slowfast"), str(tmp_path / "clip")]})
  pipeline = ip.Pipeline(ip.DataConfig(name="jsonl", data_dir=str(data_dir), num_clips=16,
                                       duplicate_sentences="merge", max_windows=8,
                                       max_queries=2))
  moment_detr = evaluate.moment_detr_on(default.get_config(), pipeline.metadata)
  top_n = evaluate.moments_kept((1, 5), moment_detr)
  rng = np.random.default_rng(0)
  records = []
  for batch in pipeline.eval_iterator("val", batch_size=2):
    b, q = batch["query_valid"].shape
    start = rng.uniform(0, 140, (b, q, 14))
    ranked = np.stack([start, start + rng.uniform(2, 40, (b, q, 14)),
                       rng.uniform(size=(b, q, 14))], -1)
    ranked[..., 3, :2] = batch["gt_windows"][..., 0, :]  # one exact hit, 4th by rank
    ranked[..., 3, 2] = 2.0
    records += evaluate.prediction_records(batch, ranked, 1.0, top_n)
  result = evaluate.metrics_of_records(records, (1, 5), (0.5, 0.7), moment_detr=moment_detr)
  evaluate.write(str(tmp_path / "work"), "val", result, records)
  lines = [json.loads(line) for line in
           (tmp_path / "work" / "eval" / "val_submission.jsonl").read_text().splitlines()]
  assert sorted(r["qid"] for r in lines) == sorted(r["qid"] for r in written["lines"]["val"][:6])
  for line in lines:
    assert line["relevant_windows"] == written["windows"][line["qid"]]
    assert len(line["pred_relevant_windows"]) == 10
  want = brute_metrics([r["pred_relevant_windows"] for r in lines],
                       [r["relevant_windows"] for r in lines])
  for name, value in want.items():
    assert result[name] == pytest.approx(value, abs=1e-12), name
  assert result["MR-full-R1@0.5"] == 1 and result["num_queries"] == 6
