"""A sentence annotated more than once in a video (`data.duplicate_sentences="merge"`,
CMHN's released TACoS data): one query with all its windows, trained towards and
scored on the best one, checked against the queries as the release files list them;
in time-ordered paragraphs (HSCNet) too. Each model's loss on several windows:
tests/test_multi_window_targets.py."""

import json

import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines import build
from data_pipelines import input_pipeline as ip
from vmr_jax import evaluate, metrics, sharding, train
from vmr_jax.models import common
from tests.models import tiny_config


def iou(a, b):
  inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
  union = (a[1] - a[0]) + (b[1] - b[0]) - inter
  return inter / union if union > 0 else 0.0


@pytest.fixture
def tacos_data(tacos_dir, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  build.build("tacos", str(data_dir), manual_dir=str(tacos_dir))
  return data_dir


def expected_queries(data_dir, split):
  """{(video, index of the first occurrence): (sentence, [windows])} from the built
  split's queries one by one, in file order."""
  out, first = {}, {}
  builder = tfds.builder("tacos", data_dir=str(data_dir))
  for ex in tfds.as_numpy(builder.as_dataset(split=split)):
    video, q = ex["video_id"].decode(), ex["queries"]
    for i in np.argsort(q["index"]):
      sentence = q["sentence"][i].decode()
      index = first.setdefault((video, sentence), int(q["index"][i]))
      out.setdefault((video, index), (sentence, []))[1].append(
          (float(q["start"][i]), float(q["end"][i])))
  return out


def config(data_dir, **kw):
  return ip.DataConfig(name="tacos", data_dir=str(data_dir), num_clips=16,
                       duplicate_sentences="merge", **kw)


@pytest.mark.parametrize("batch_kind", ["video", "query"])
def test_merged_queries_carry_all_their_windows(tacos_data, batch_kind):
  expected = expected_queries(tacos_data, "test")
  assert len(expected) < sum(len(w) for _, w in expected.values())  # real duplicates
  pipeline = ip.Pipeline(config(tacos_data, batch_kind=batch_kind, max_queries=4))
  batches = list(pipeline.eval_iterator("test", batch_size=3))
  assert sum(b["example_valid"].sum() for b in batches) == pipeline.count_examples("test")
  seen = {}
  for b in batches:
    if batch_kind == "query":
      b = {k: v[:, None] for k, v in b.items()}
      b["query_valid"] = b["example_valid"]
    for i, j in zip(*np.nonzero(b["query_valid"])):
      key = (b["video_id"][i, 0] if batch_kind == "query" else b["video_id"][i]).decode()
      key = (key, int(b["query_index"][i, j]))
      assert key not in seen
      seen[key] = (b["sentence"][i, j].decode(), b["gt_windows"][i, j], b["gt_times"][i, j])
  assert seen.keys() == expected.keys()
  for key, (sentence, windows, gt) in seen.items():
    want_sentence, want = expected[key]
    assert sentence == want_sentence and windows.shape == (16, 2)
    np.testing.assert_allclose(windows[:len(want)], want, rtol=1e-6)
    np.testing.assert_allclose(windows[len(want):], np.broadcast_to(want[0], (16 - len(want), 2)),
                               rtol=1e-6)
    np.testing.assert_allclose(gt, want[0], rtol=1e-6)


def test_too_many_windows_is_an_error(tacos_data):
  pipeline = ip.Pipeline(config(tacos_data, max_windows=2))
  with pytest.raises(tf.errors.InvalidArgumentError, match="data.max_windows=2"):
    list(pipeline.eval_iterator("test", batch_size=2))


def test_merge_is_validated():
  with pytest.raises(ValueError, match="duplicate_sentences must be one of"):
    ip.DataConfig(duplicate_sentences="max")
  with pytest.raises(ValueError, match="paragraphs='' or 'time'"):
    ip.DataConfig(duplicate_sentences="merge", paragraphs="release")
  ip.DataConfig(duplicate_sentences="merge", paragraphs="time")


def test_merged_paragraphs_are_in_time_order(tacos_data):
  """`paragraphs="time"` with "merge": each merged query once, with all its windows,
  a video's queries sorted by their first window's start."""
  expected = expected_queries(tacos_data, "test")
  pipeline = ip.Pipeline(config(tacos_data, paragraphs="time", max_queries=4))
  batches = list(pipeline.eval_iterator("test", batch_size=3))
  assert sum(b["example_valid"].sum() for b in batches) == pipeline.count_examples("test")
  starts, seen = {}, set()
  for b in batches:
    for i, j in zip(*np.nonzero(b["query_valid"])):
      key = (b["video_id"][i].decode(), int(b["query_index"][i, j]))
      assert key not in seen
      seen.add(key)
      want = expected[key][1]
      np.testing.assert_allclose(b["gt_windows"][i, j, :len(want)], want, rtol=1e-6)
      np.testing.assert_allclose(b["gt_times"][i, j], want[0], rtol=1e-6)
      starts.setdefault(key[0], []).append(float(b["gt_times"][i, j, 0]))
  assert seen == expected.keys()
  assert all(s == sorted(s) for s in starts.values())
  assert any(s != [want[0][0] for (v, _), (_, want) in sorted(expected.items()) if v == video]
             for video, s in starts.items())  # the file order is not the time order


def test_records_and_metrics_score_the_best_window(tacos_data):
  """Random rankings of the merged test queries: R@n, mIoU and the field's records
  against a plain loop over each query's windows."""
  expected = expected_queries(tacos_data, "test")
  pipeline = ip.Pipeline(config(tacos_data, max_queries=8))
  rng = np.random.default_rng(0)
  records = []
  for b in pipeline.eval_iterator("test", batch_size=2):
    starts = rng.uniform(0, 0.8, (2, 8, 20, 1)) * b["duration"][:, None, None, None]
    lengths = rng.uniform(0.02, 0.3, starts.shape) * b["duration"][:, None, None, None]
    ranked = np.concatenate([starts, starts + lengths, rng.uniform(size=starts.shape)], -1)
    records += evaluate.prediction_records(b, ranked, 0.5, 5)
  got = evaluate.metrics_of_records(records, (1, 5), (0.3, 0.5))
  hits = {(n, m): [] for n in (1, 5) for m in (0.3, 0.5)}
  top1 = []
  for r in records:
    windows = expected[(r["video"], r["query_index"])][1]
    assert r["gt_windows"] == [list(w) for w in dict.fromkeys(windows)]
    assert evaluate.field_record(r)["relevant_windows"] == r["gt_windows"]
    best = [max(iou(p[:2], w) for w in windows) for p in r["pred"]]
    top1.append(best[0])
    for n, m in hits:
      hits[n, m].append(any(x >= m for x in best[:n]))
  assert got["num_queries"] == len(expected)
  for (n, m), h in hits.items():
    assert got[metrics.metric_name(n, m)] == pytest.approx(np.mean(h))
  assert got["mIoU"] == pytest.approx(np.mean(top1))
  # scored on the first window alone, some queries would fare worse
  assert any(r["gt_windows"][1:] for r in records)


def test_target_iou_is_the_best_window():
  rng = np.random.default_rng(1)
  times = np.sort(rng.uniform(0, 10, (2, 7, 2)), -1)
  windows = np.sort(rng.uniform(0, 10, (2, 3, 4, 2)), -1)
  got = np.asarray(common.target_iou(times, {"gt_windows": windows,
                                             "gt_times": windows[:, :, 0]}))
  want = [[[max(iou(times[b, n], w) for w in windows[b, q]) for q in range(3)]
           for n in range(7)] for b in range(2)]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  first = np.asarray(common.target_iou(times, {"gt_times": windows[:, :, 0]}))
  want = [[[iou(times[b, n], windows[b, q, 0]) for q in range(3)] for n in range(7)]
          for b in range(2)]
  np.testing.assert_allclose(first, want, rtol=1e-5, atol=1e-6)


def test_hscnet_trains_on_merged_paragraphs(tacos_data, tiny_release):
  """HSCNet (paragraph grounding, whose loss matches each sentence to one of its
  windows) on a batch of time-ordered paragraphs of merged TACoS sentences, some with
  several windows: a finite loss that reads them (the model side of several windows:
  tests/test_multi_window_targets.py)."""
  config = tiny_config("hscnet", tacos_data, tiny_release)
  config.data.update(name="tacos", builder_config=None, duplicate_sentences="merge",
                     paragraphs="time")
  config.text.update(vectors="random", glove_dim=8)
  run = train.setup(config)
  several = lambda b: (b["gt_windows"] != b["gt_windows"][..., :1, :]).any(
      (-2, -1))[b["query_valid"]].any()
  full = next(filter(several, run.pipeline.eval_iterator("test", 4)))
  batch = {**sharding.numeric(full), "epoch": np.zeros(4, np.int32)}
  outputs = jax.jit(run.model.module.apply)(run.state.variables, batch)
  loss = jax.jit(lambda b: run.spec.loss(outputs, b, config)[0])
  first = {k: v for k, v in batch.items() if k != "gt_windows"}  # gt_times alone
  assert np.isfinite(float(loss(batch))) and float(loss(batch)) != float(loss(first))


def test_cmhn_released_trains_and_evaluates_merged_queries(tacos_data, tiny_release,
                                                           tmp_path):
  """The released CMHN (whose loss reads `gt_windows`) from the trainer on TACoS
  files: every merged test query counted once, the metrics those of its records."""
  config = tiny_config("cmhn", tacos_data, tiny_release)
  config.data.update(name="tacos", builder_config=None, duplicate_sentences="merge")
  config.text.update(vectors="random", glove_dim=8)
  config.train.update(num_steps=2, eval_every=2, checkpoint_every=2)
  result = train.train_and_evaluate(config, str(tmp_path))
  with open(tmp_path / "eval" / "test_predictions.jsonl") as f:
    records = [json.loads(line) for line in f]
  expected = expected_queries(tacos_data, "test")
  assert result["num_queries"] == len(records) == len(expected)
  assert {(r["video"], r["query_index"]) for r in records} == expected.keys()
  assert np.isfinite([v for k, v in result.items()]).all()
  again = evaluate.metrics_of_records(records, tuple(config.eval.recall_at),
                                      tuple(config.eval.iou_thresholds))
  assert again == pytest.approx(result)
