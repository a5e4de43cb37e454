"""Videos of any length (`vmr_jax.long_videos`, `Predictor.encode(window=...)`,
`python -m vmr_jax.search --window_clips`): windows cover a video with their offsets;
the merge is greedy NMS across windows (brute force); a window no video exceeds is
the single resampled pass, exactly; windowed `localize` is its pieces localized one
by one, shifted and NMS'd (brute force, a Retrieval model and a whole-model one);
and a short event in a 2,400-clip video, which one resampled pass loses, is found
with windows, by `localize`, `search` and the search command (npz folders and
Moment-DETR JSON lines)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import event_model
from tests.conftest import REPO
from tests.models import FEATURE_DIM, VOCAB
from tests.test_predictor import WORDS, collection, write_export

pytestmark = pytest.mark.xdist_group("long_videos")
SENTENCE = "w3 w4 w5"


def test_windows_cover_the_video_with_their_offsets():
  from vmr_jax import long_videos
  assert long_videos.window_starts(40, 16, 8).tolist() == [0, 8, 16, 24]
  assert long_videos.window_starts(41, 16, 8).tolist() == [0, 8, 16, 24, 25]
  assert long_videos.window_starts(41, 16).tolist() == [0, 8, 16, 24, 25]  # stride W // 2
  assert long_videos.window_starts(16, 16).tolist() == [0]
  assert long_videos.window_starts(5, 16, 3).tolist() == [0]
  assert long_videos.window_starts(10, 3, 3).tolist() == [0, 3, 6, 7]
  assert long_videos.overlap(16, 8) == 3 and long_videos.overlap(10, 3) == 5
  for bad in [(0, None), (4, 0), (4, 5), (2.5, None)]:
    with pytest.raises(ValueError, match="whole number of clips"):
      long_videos.check_window(*bad)
  rng = np.random.default_rng(0)
  for n, window, stride in [(1, 4, 2), (7, 7, 3), (8, 7, 3), (50, 16, 8), (53, 10, 7),
                            (100, 9, 9)]:
    feats = rng.normal(size=(n, 3)).astype(np.float32)
    pieces = long_videos.split(feats, 2.5 * n, window, stride)
    if n <= window:
      assert len(pieces) == 1 and pieces[0].features is feats
      assert (pieces[0].offset, pieces[0].duration) == (0.0, 2.5 * n)
      continue
    assert all(len(p.features) == window for p in pieces)
    assert pieces[0].start == 0 and pieces[-1].start + window == n
    assert all(0 < b.start - a.start <= stride for a, b in zip(pieces, pieces[1:]))
    seen = np.zeros(n, int)
    rebuilt = np.zeros_like(feats)
    for p in pieces:  # round trip: each piece is the video's clips at its offset
      np.testing.assert_array_equal(p.features, feats[p.start:p.start + window])
      assert p.offset == pytest.approx(2.5 * p.start) and p.duration == pytest.approx(2.5 * window)
      rebuilt[p.start:p.start + window] = p.features
      seen[p.start:p.start + window] += 1
    np.testing.assert_array_equal(rebuilt, feats)
    assert seen.min() >= 1 and seen.max() <= long_videos.overlap(window, stride)
  shifted = long_videos.to_video_time(np.array([[1.0, 2.0, 0.5]], np.float32), 10.0)
  np.testing.assert_array_equal(shifted, [[11.0, 12.0, 0.5]])


def brute_force_nms(moments, threshold, top_n):
  """Greedy NMS written out: best score first (ties: input order), a moment kept
  unless its IoU with a kept one exceeds `threshold`."""
  order = sorted(range(len(moments)), key=lambda i: (-moments[i][2], i))
  kept = []
  for i in order:
    s, e, score = moments[i]
    if not np.isfinite(score):
      continue
    ious = []
    for ks, ke, _ in kept:
      inter = max(0.0, min(e, ke) - max(s, ks))
      union = (e - s) + (ke - ks) - inter
      ious.append(inter / union if union > 0 else 0.0)
    if all(iou <= threshold for iou in ious):
      kept.append((s, e, score))
    if len(kept) == top_n:
      break
  return np.array(kept).reshape(-1, 3)


def test_merge_by_brute_force():
  from vmr_jax import long_videos
  rng = np.random.default_rng(1)
  for trial in range(20):
    pieces, offsets, every = [], [], []
    for p in range(int(rng.integers(1, 5))):
      k = int(rng.integers(0, 8))
      starts = rng.uniform(0, 8, k)
      moments = np.stack([starts, starts + rng.uniform(0.1, 6, k),
                          np.round(rng.normal(size=k), 1)], -1)  # rounded: ties
      if k and trial % 3 == 0:
        moments[0, 2] = -np.inf  # a padding candidate
      pieces.append(moments), offsets.append(4.0 * p)
      every += [(s + 4.0 * p, e + 4.0 * p, score) for s, e, score in moments]
    for threshold, top_n in [(0.5, 5), (0.3, None), (1.0, 3)]:
      got = long_videos.merge(pieces, offsets, threshold, top_n)
      want = brute_force_nms(every, threshold, top_n or len(every) + 1)
      np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
  made = {}

  def get(model):
    if model not in made:
      directory = tmp_path_factory.mktemp("export") / model
      if model == "event":
        with event_model.registered():
          write_event_export(directory)
      else:
        write_export(directory, model)
      made[model] = directory
    return made[model]
  return get


def write_event_export(directory):
  import jax
  from vmr_jax import export, registry, train
  from vmr_jax.tools.random_batch import random_batch
  config = event_model.get_config()
  built = registry.for_config(config).create(config, registry.DataInfo(FEATURE_DIM, WORDS, None))
  batch = random_batch(config, FEATURE_DIM, VOCAB, np.random.default_rng(0))
  variables = jax.tree.map(np.asarray, train.init_variables(built, batch, config))
  export.write(str(directory), config, variables, WORDS, FEATURE_DIM, step=0)


def moments_of(hits):
  return [[(m.video_id, m.start, m.end, m.score) for m in moments] for moments in hits]


@pytest.mark.parametrize("model", ["cmhn", "fian"])
def test_a_window_no_video_exceeds_is_the_single_pass(exports, model):
  from vmr_jax import Predictor
  predictor = Predictor.load(str(exports(model)))
  features, durations = collection(5)  # 5 to 29 clips
  longest = max(len(f) for f in features.values())
  sentences = [SENTENCE, "w7 w8 w2 w9"]
  predictor.encode(features, durations)
  want = ([predictor.localize(v, sentences, 4) for v in features],
          moments_of(predictor.search(sentences, 6)))
  for window, stride in [(longest, None), (longest + 7, 3)]:
    predictor.encode(features, durations, window=window, stride=stride)
    got = ([predictor.localize(v, sentences, 4) for v in features],
           moments_of(predictor.search(sentences, 6)))
    for a, b in zip(got[0], want[0]):
      for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert got[1] == want[1]
  with pytest.raises(ValueError, match="needs a window"):
    predictor.encode(features, durations, stride=2)


@pytest.mark.parametrize("model", ["cmhn", "fian"])
def test_windowed_localize_by_brute_force(exports, model):
  """A 40-clip video in 16-clip windows every 8 (starts 0, 8, 16, 24): `localize` is
  each window localized alone as a video of 16 clips, every candidate kept (NMS off),
  shifted by its offset, then NMS'd together; `search` returns moments of the whole
  video (its best is localize's best), each video id of the collection."""
  from vmr_jax import Predictor, metrics
  predictor = Predictor.load(str(exports(model)))
  features, durations = collection(3, seed=2)
  rng = np.random.default_rng(3)
  features["long"] = rng.normal(size=(40, FEATURE_DIM)).astype(np.float32)
  durations["long"] = 80.0  # 2 s a clip
  sentences = [SENTENCE, "w7 w8 w2 w9"]
  threshold = predictor.config.eval.nms_threshold
  pieces = {f"long@{s}": features["long"][s:s + 16] for s in (0, 8, 16, 24)}
  predictor.encode(pieces, {p: 32.0 for p in pieces})
  predictor.config.eval.nms_threshold = 1.0  # every candidate
  raw = {p: predictor.localize(p, sentences, 10_000) for p in pieces}
  predictor.config.eval.nms_threshold = threshold
  predictor.encode(features, durations, window=16, stride=8)
  assert predictor.video_ids == list(features)
  got = predictor.localize("long", sentences, 5)
  for s in range(len(sentences)):
    every = np.concatenate([raw[p][s] + [2.0 * int(p[5:]), 2.0 * int(p[5:]), 0.0]
                            for p in pieces])
    np.testing.assert_allclose(got[s], metrics.nms(every, threshold, 5), rtol=1e-6, atol=1e-5)
    assert np.all((got[s][:, 0] >= 0) & (got[s][:, 1] <= 80.0 + 1e-4))
  hits = predictor.search(sentences, top_n=8)
  for s, moments in enumerate(hits):
    assert {m.video_id for m in moments} <= set(features) and len(moments) >= 4
    scores = [m.score for m in moments]
    assert scores == sorted(scores, reverse=True)
    best = max([(predictor.localize(v, [sentences[s]], 1)[0][0], v) for v in features],
               key=lambda x: x[0][2])
    assert (moments[0].video_id, moments[0].score) == (best[1], pytest.approx(best[0][2]))
    for v in features:  # NMS within each video, across its windows
      mine = np.array([(m.start, m.end) for m in moments if m.video_id == v]).reshape(-1, 2)
      ious = metrics.pairwise_iou(mine, mine)[np.triu_indices(len(mine), 1)]
      assert np.all(ious <= threshold)
      assert np.all(mine[:, 1] <= durations[v] + 1e-4)


def long_video(u: np.ndarray, clips: int, event: tuple[int, int], seed: int):
  """`[clips, D]` noise pointing against `u`, with the clips `event` along it."""
  rng = np.random.default_rng(seed)
  along = u / np.linalg.norm(u)
  feats = rng.normal(size=(clips, len(u))) - 0.5 * along
  feats[event[0]:event[1]] += 2.5 * along
  return feats.astype(np.float32)


def test_a_long_videos_event_is_found_in_windows_and_lost_in_one_pass(exports):
  """2,400 clips of 2 s (80 minutes), a 12-clip (24 s) event: one resampled pass
  averages 150 clips into each of the model's 16, and its best moment misses the
  event (IoU < 0.5); 32-clip windows find it (IoU >= 0.5), alone and among other
  videos."""
  from vmr_jax import Predictor, metrics
  with event_model.registered():
    predictor = Predictor.load(str(exports("event")))
  u = event_model.direction(predictor.exported, SENTENCE)
  others, durations = collection(3, seed=4)
  for seed, start in [(0, 1234), (1, 301), (2, 2150)]:
    event = (start, start + 12)
    features = {"long": long_video(u, 2400, event, seed), **others}
    durations["long"] = 4800.0
    gt = (2.0 * event[0], 2.0 * event[1])
    predictor.encode(features, durations)
    single = predictor.localize("long", [SENTENCE], 5)[0]
    assert metrics.pairwise_iou(single[:, :2], [gt]).max() < 0.5, single
    predictor.encode(features, durations, window=32)
    windowed = predictor.localize("long", [SENTENCE], 5)[0]
    assert metrics.temporal_iou(windowed[0, :2], gt) >= 0.5, (windowed, gt)
    top = predictor.search([SENTENCE], top_n=5)[0]
    assert top[0].video_id == "long" and metrics.temporal_iou((top[0].start, top[0].end),
                                                              gt) >= 0.5


def test_corpus_metrics_count_any_relevant_window():
  from vmr_jax.metrics import corpus_metrics
  predictions = [[("a", 10.0, 20.0)], [("a", 10.0, 20.0)], [("b", 10.0, 20.0)]]
  windows = [[[0.0, 5.0], [10.0, 19.0]], [[0.0, 5.0]], [[10.0, 20.0]]]
  got = corpus_metrics(predictions, ["a", "a", "a"], windows, (1,), (0.5,))
  assert got["corpus R@1,IoU=0.5"] == pytest.approx(1 / 3)
  assert got["video R@1"] == pytest.approx(2 / 3)
  same = corpus_metrics(predictions, ["a", "a", "a"], np.array([w[0] for w in windows]),
                        (1,), (0.5,))
  assert same["corpus R@1,IoU=0.5"] == 0.0  # [Q, 2]: the first windows alone


SEARCH = ("import runpy, sys; sys.path.insert(0, {repo!r}); from tests import event_model; "
          "event_model.register(); runpy.run_module('vmr_jax.search', run_name='__main__')")


def test_search_command_on_npz_folders_and_json_lines(exports, tmp_path):
  """Two npz folders (the features' halves, joined along D), a Moment-DETR JSON-lines
  file whose query has two relevant windows, the event one of them: `--evaluate`
  finds it with `--window_clips=32` (corpus R@1,IoU=0.5 100) and not without."""
  from vmr_jax import Predictor
  from vmr_jax.metrics import corpus_metrics
  with event_model.registered():
    u = event_model.direction(Predictor.load(str(exports("event"))).exported, SENTENCE)
  features, durations = collection(2, seed=5)
  features["long"], durations["long"] = long_video(u, 2400, (1234, 1246), 0), 4800.0
  half = FEATURE_DIM // 2
  for name, part in [("a", slice(0, half)), ("b", slice(half, None))]:
    os.makedirs(tmp_path / name)
    for video, feats in features.items():
      np.savez(tmp_path / name / f"{video}.npz", features=feats[:, part])
  lines = [{"qid": 7, "query": SENTENCE, "vid": "long", "duration": 4800.0,
            "relevant_windows": [[100.0, 130.0], [2468.0, 2492.0]]},
           {"qid": 8, "query": "w9 w10", "vid": "v0", "duration": durations["v0"],
            "relevant_windows": [[1.0, 4.0]]},
           {"qid": 9, "query": "w11", "vid": "v1", "duration": durations["v1"],
            "relevant_windows": [[2.0, 5.0]]}]
  (tmp_path / "val.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
  base = [sys.executable, "-c", SEARCH.format(repo=str(REPO)), f"--export={exports('event')}",
          f"--features={tmp_path / 'a'},{tmp_path / 'b'}",
          f"--annotations={tmp_path / 'val.jsonl'}", "--annotation_format=jsonl",
          "--evaluate", "--top_n=5"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  found = {}
  for name, extra in [("single", []), ("windows", ["--window_clips=32", "--window_stride=16"])]:
    output = tmp_path / f"{name}.jsonl"
    out = subprocess.run(base + extra + [f"--output={output}"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "3 queries, 3 videos" in out.stdout
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["qid"] for r in records] == [7, 8, 9]
    assert records[0]["relevant_windows"] == lines[0]["relevant_windows"]
    found[name] = records[0]["pred"][0]
    hit = found[name][0] == "long" and found[name][1] < 2492.0 and found[name][2] > 2468.0
    assert hit == (name == "windows"), found
    want = corpus_metrics([r["pred"] for r in records], [r["vid"] for r in records],
                          [r["relevant_windows"] for r in records], (1, 5), (0.5, 0.7))
    for metric, value in want.items():
      assert f"{metric:24s} {100 * value:6.2f}" in out.stdout
    long_hit = corpus_metrics(records[0]["pred"] and [records[0]["pred"]], ["long"],
                              [records[0]["relevant_windows"]], (1,), (0.5,))
    assert long_hit["corpus R@1,IoU=0.5"] == (1.0 if name == "windows" else 0.0)


def test_splice_puts_the_event_once_at_its_place():
  from vmr_jax.tools.spliced_videos import splice
  rng = np.random.default_rng(0)
  event = np.full((5, 2), 9.0, np.float32)
  background = [np.zeros((7, 2), np.float32), np.ones((3, 2), np.float32)]
  for length in (3, 5, 30, 101):
    video, at = splice(event, background, length, rng)
    assert len(video) == max(length, 5)
    np.testing.assert_array_equal(video[at:at + 5], event)
    assert (video == 9.0).all(axis=1).sum() == 5


def test_long_video_recall_tool(tmp_path):
  """The measurement tool on the event model's generated sources: a markdown table
  where, at 1,000 clips, windows find the events and one resampled pass does not."""
  event_model.write_sources(str(tmp_path), videos=6)
  tool = SEARCH.format(repo=str(REPO)).replace("vmr_jax.search", "vmr_jax.tools.long_video_recall")
  out = subprocess.run([sys.executable, "-c", tool, f"--export={tmp_path / 'export'}",
                        f"--features={tmp_path / 'features'}",
                        f"--annotations={tmp_path / 'val.jsonl'}", "--lengths=0,1000",
                        "--window_clips=32"], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]):
          [float(x) for x in line.strip("|").split("|")[2:]]
          for line in out.stdout.splitlines() if line.startswith("| ") and "R@1" not in line}
  assert set(rows) == {(length, way) for length in ("source", "1000")
                       for way in ("one resampled pass", "windows")}
  assert rows["1000", "one resampled pass"] == [0.0, 0.0]
  assert rows["1000", "windows"][1] >= 50.0
