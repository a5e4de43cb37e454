"""The `jsonl` builder (Moment-DETR's JSON lines, `data_pipelines/builders/jsonl.py`)
on real QVHighlights lines with random features: the build report, the stored
features, and the queries read back through the input pipeline with all their
windows."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from data_pipelines import build
from data_pipelines import input_pipeline as ip
from data_pipelines.annotations import FormatError
from data_pipelines.builders.base import REPORT_FILE
from data_pipelines.builders.jsonl import split_names
from tests.conftest import REPO
from tests.release_files import JSONL_CLIPPED, JSONL_SKIPPED, write_jsonl_release


@pytest.fixture
def release(tmp_path, real_annotations):
  return tmp_path, write_jsonl_release(tmp_path, real_annotations)


def source(directory, **kw):
  return {"annotations": [str(directory / f"highlight_{s}_release.jsonl")
                          for s in ("train", "val")],
          "features": [str(directory / "slowfast"), str(directory / "clip")], **kw}


def read_queries(pipeline, split):
  """{qid: (video, sentence, duration, [windows])} of every query the pipeline
  reads in `split`, each seen once."""
  out = {}
  for batch in pipeline.eval_iterator(split, batch_size=2):
    for b, q in zip(*np.nonzero(batch["query_valid"])):
      qid = json.loads(batch["qid"][b, q].decode())
      assert qid not in out
      windows = [list(map(float, w)) for w in batch["gt_windows"][b, q]]
      distinct = [w for i, w in enumerate(windows) if w not in windows[:i]]
      out[qid] = (batch["video_id"][b].decode(), batch["sentence"][b, q].decode(),
                  float(batch["duration"][b]), distinct)
  return out


def test_build_report_and_queries_with_all_their_windows(release, tmp_path_factory):
  directory, written = release
  data_dir = tmp_path_factory.mktemp("tfds")
  builder = build.build("jsonl", str(data_dir), jsonl=source(directory))
  report = json.loads((builder.data_path / REPORT_FILE).read_text())
  assert report["skipped"] == JSONL_SKIPPED and report["clipped"] == JSONL_CLIPPED
  assert report["kept"] == {"train": {"videos": 6, "queries": 6},
                            "val": {"videos": 6, "queries": 6}}
  meta = builder.info.metadata
  assert meta["feature_dim"] == 12 and meta["clip_seconds"] == 2.0
  assert meta["num_queries"] == {"train": 6, "val": 6}
  assert meta["max_windows_per_query"] == 7  # qid 9769, the first train line
  assert meta["moment_detr_metrics"] and meta["skipped"] == JSONL_SKIPPED
  assert set(meta["chance"]["by_split"]["val"]) >= {"R@1,IoU=0.5", "mIoU"}

  config = ip.DataConfig(name="jsonl", data_dir=str(data_dir), num_clips=16,
                         duplicate_sentences="merge", max_windows=8, max_queries=3)
  pipeline = ip.Pipeline(config)
  for split, lines in written["lines"].items():
    want = {r["qid"]: (r["vid"], r["query"].strip(), float(r["duration"]),
                       written["windows"][r["qid"]])
            for r in lines[:6]}
    assert read_queries(pipeline, split) == want
  # Stored features: each folder's clips L2-normalized, cut to the fewer, concatenated.
  vid = written["lines"]["val"][0]["vid"]
  feats, duration = pipeline.video_features("val", vid)
  parts = [written["features"][f][vid] for f in ("slowfast", "clip")]
  clips = min(len(p) for p in parts)
  want = np.concatenate([p[:clips] / np.linalg.norm(p[:clips], axis=-1, keepdims=True)
                         for p in parts], axis=-1)
  np.testing.assert_allclose(feats, want, rtol=1e-6)
  assert clips == 75 and duration == 150
  batch = next(iter(pipeline.train_iterator(batch_size=2, seed=0)))
  assert batch["gt_windows"].shape == (2, 3, 8, 2) and batch["video_feats"].shape == (2, 16, 12)

  with pytest.raises(ip.DataMismatchError, match="duplicate_sentences='merge'"):
    ip.Pipeline(ip.DataConfig(name="jsonl", data_dir=str(data_dir)))
  with pytest.raises(ip.DataMismatchError, match="max_windows >= 7"):
    ip.Pipeline(ip.DataConfig(name="jsonl", data_dir=str(data_dir), max_windows=4,
                              duplicate_sentences="merge"))


def test_hdf5_features_named_splits_and_clips_past_the_end(release, tmp_path_factory):
  directory, written = release
  rng = np.random.default_rng(1)
  stored = {}
  with h5py.File(directory / "features.hdf5", "w") as f:
    for vid, array in written["features"]["slowfast"].items():
      f[vid] = stored[vid] = rng.normal(size=(len(array) + 1, 6)).astype(np.float32)
  data_dir = tmp_path_factory.mktemp("tfds")
  builder = build.build("jsonl", str(data_dir), jsonl=source(
      directory, features=[str(directory / "features.hdf5")], splits=["fit", "heldout"],
      l2_normalize=False, clip_seconds=2.0))
  assert sorted(builder.info.splits) == ["fit", "heldout"]
  assert builder.info.metadata["feature_dim"] == 6
  pipeline = ip.Pipeline(ip.DataConfig(name="jsonl", data_dir=str(data_dir), num_clips=8,
                                       duplicate_sentences="merge", max_windows=8))
  for record in written["lines"]["val"][:6]:
    feats, duration = pipeline.video_features("heldout", record["vid"])
    clips = int(np.ceil(duration / 2))  # the extra clip starts after the video's end
    np.testing.assert_array_equal(feats, stored[record["vid"]][:clips])
  assert len(read_queries(pipeline, "heldout")) == 6


def test_unlabeled_split_and_bad_lines_stop_the_build(release, tmp_path_factory):
  directory, written = release
  test = directory / "highlight_test_release.jsonl"
  test.write_text("".join(
      json.dumps({k: v for k, v in r.items() if k != "relevant_windows"}) + "\n"
      for r in written["lines"]["val"][:3]))
  paths = source(directory)
  paths["annotations"].append(str(test))
  with pytest.raises(FormatError, match="highlight_test_release.jsonl: no line has "
                     "relevant_windows"):
    build.build("jsonl", str(tmp_path_factory.mktemp("d")), jsonl=paths)
  test.write_text('{"qid": 1, "query": "a", "vid": "v", "duration": 10, '
                  '"relevant_windows": [[1, 2, 3]]}\n')
  with pytest.raises(FormatError, match="jsonl: video 'v': field 'relevant_windows': line 1: "
                     "expected a list of \\[start, end\\] pairs"):
    build.build("jsonl", str(tmp_path_factory.mktemp("d")), jsonl=paths)
  test.write_text('{"qid": 1, "query": "a", "vid": "v", "relevant_windows": []}\n')
  with pytest.raises(FormatError, match="video 'v': field 'duration': line 1: missing"):
    build.build("jsonl", str(tmp_path_factory.mktemp("d")), jsonl=paths)


def test_split_names():
  assert split_names(["a/highlight_train_release.jsonl", "b/highlight_val_release.jsonl",
                      "my-test.jsonl"]) == ["train", "val", "test"]
  assert split_names(["x/clips.jsonl", "y/train_val.jsonl"]) == ["clips", "train_val"]
  assert split_names(["a.jsonl", "b.jsonl"], ["fit", "eval"]) == ["fit", "eval"]
  with pytest.raises(ValueError, match="not distinct"):
    split_names(["a/train.jsonl", "b/train.jsonl"])
  with pytest.raises(ValueError, match="2 splits for 1"):
    split_names(["a.jsonl"], ["x", "y"])
  with pytest.raises(ValueError, match="is not a word"):
    split_names(["my data.jsonl"])


def test_build_cli(release, tmp_path_factory):
  """The command the builder's docstring gives, with its summary."""
  directory, _ = release
  data_dir = tmp_path_factory.mktemp("tfds")
  out = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", "jsonl", f"--data_dir={data_dir}",
       f"--annotations={directory}/highlight_train_release.jsonl,"
       f"{directory}/highlight_val_release.jsonl",
       f"--features={directory}/slowfast,{directory}/clip", "--clip_seconds=2"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  assert "feature dim 12" in out.stdout and "val: 6 videos, 6 queries" in out.stdout
  assert f"skipped: {sum(JSONL_SKIPPED.values())} records" in out.stdout
  assert "features do not span the video" in out.stdout
  bad = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", "jsonl", f"--data_dir={data_dir}",
       f"--annotations={directory}/nowhere.jsonl", f"--features={directory}/clip"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert bad.returncode == 1 and "nowhere.jsonl: no such file or folder" in bad.stderr



def test_search_normalizes_clips_as_the_builder_stores_them(tmp_path):
  """`vmr_jax.search`'s features on the jsonl route (`search_inputs.read_collection`):
  with `l2_normalize` (search's default for a jsonl-trained export) each source's
  clips L2-normalized, cut to the fewer and concatenated, as the jsonl builder stores
  them; without it as read."""
  from vmr_jax import search_inputs
  rng = np.random.default_rng(0)
  written = {}
  for name, dim, extra in (("a", 3, 0), ("b", 2, 1)):
    (tmp_path / name).mkdir()
    for vid, clips in (("v1", 4), ("v2", 5)):
      written[name, vid] = rng.normal(size=(clips + extra, dim)).astype(np.float32)
      np.savez(tmp_path / name / f"{vid}.npz", features=written[name, vid])
  durations = {"v1": 8.0, "v2": 10.0}
  feats, seconds = search_inputs.read_collection(f"{tmp_path / 'a'},{tmp_path / 'b'}", None,
                                                 durations, l2_normalize=True)
  raw, _ = search_inputs.read_collection(str(tmp_path / "a"), None, durations)
  assert seconds == durations
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  for vid, clips in (("v1", 4), ("v2", 5)):
    want = np.concatenate([unit(written["a", vid]), unit(written["b", vid][:clips])], -1)
    np.testing.assert_allclose(feats[vid], want, rtol=1e-5)
    np.testing.assert_array_equal(raw[vid], written["a", vid])
