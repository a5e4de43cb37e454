"""QVHighlights: the named builder on its release layout, the QVHighlights-shaped data
from the real annotations, and the five models' configs."""

import importlib
import json
import math

import numpy as np
import pytest

from data_pipelines import build, shaped_features
from data_pipelines.builders import qvhighlights
from data_pipelines.words import split_words
from tests.release_files import JSONL_CLIPPED, JSONL_SKIPPED, write_jsonl_release


def release_layout(directory, real_annotations):
  """The jsonl test release moved into Moment-DETR's layout: `data/*.jsonl`,
  `features/{slowfast,clip}_features/`."""
  directory.mkdir()
  written = write_jsonl_release(directory, real_annotations)
  (directory / "data").mkdir()
  (directory / "features").mkdir()
  for name in qvhighlights.ANNOTATION_FILES.values():
    (directory / name).rename(directory / "data" / name)
  for folder in ("slowfast", "clip"):
    (directory / folder).rename(directory / "features" / f"{folder}_features")
  return written


@pytest.mark.parametrize("config, dim", [("slowfast_clip", 12), ("clip", 4)])
def test_release_layout_feature_types_and_report(tmp_path, real_annotations, config, dim):
  written = release_layout(tmp_path / "release", real_annotations)
  builder = build.build("qvhighlights", str(tmp_path / "tfds"), str(tmp_path / "release"),
                        config=config)
  meta = builder.info.metadata
  assert set(builder.info.splits) == {"train", "val"}
  assert meta["feature_dim"] == dim and meta["clip_seconds"] == 2.0
  assert meta["moment_detr_metrics"] and meta["chance"]["num_clips"] == 75
  assert meta["skipped"] == JSONL_SKIPPED and meta["clipped"] == JSONL_CLIPPED
  train = list(builder.as_dataset(split="train").as_numpy_iterator())
  by_vid = {r["vid"]: r for r in written["lines"]["train"]}
  assert {ex["video_id"].decode() for ex in train} == set(by_vid)
  for ex in train:
    line = by_vid[ex["video_id"].decode()]
    assert len(ex["features"]) == math.ceil(line["duration"] / 2)
    windows = np.stack([ex["queries"]["start"], ex["queries"]["end"]], 1)
    np.testing.assert_allclose(windows, written["windows"][line["qid"]])


def test_missing_release_file_is_named(tmp_path, real_annotations):
  release_layout(tmp_path / "release", real_annotations)
  (tmp_path / "release" / "features" / "clip_features").rename(tmp_path / "elsewhere")
  with pytest.raises(FileNotFoundError, match="clip_features"):
    build.build("qvhighlights", str(tmp_path / "tfds"), str(tmp_path / "release"))


def shaped_lines(real_annotations, split, n):
  path = real_annotations / "qvhighlights" / f"highlight_{split}_release.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines()[:n]]


def test_shaped_features_carry_each_sentence_in_its_windows(real_annotations):
  """Projected on its sentence's vector, a video's rows inside the query's windows
  score the amplitude above the others, in both feature types; the row count is the
  release's (2-s clips)."""
  spec = shaped_features.QvhighlightsShapedSpec(noise=0.0, distractors=0)
  for line in shaped_lines(real_annotations, "train", 20):
    feats = shaped_features.qvhighlights_features([line], [line], spec,
                                                  np.random.default_rng(0))
    rows = math.ceil(line["duration"] / 2)
    inside = np.zeros(rows, bool)
    for start, end in line["relevant_windows"]:
      inside[int(start // 2):math.ceil(end / 2)] = True
    for source, (f, dim) in enumerate(zip(feats, spec.dims)):
      assert f.shape == (rows, dim)
      s = shaped_features.sentence_vector(line["query"], dim, spec.seed + source)
      np.testing.assert_allclose(np.where(inside, f @ s, 0), f @ s, atol=1e-5)
      assert np.all(f[inside] @ s > 0.49)


def test_shaped_build_from_real_annotations(tmp_path, real_annotations):
  manual = tmp_path / "manual"
  manual.mkdir()
  for split in ("train", "val"):
    lines = shaped_lines(real_annotations, split, 12)
    (manual / f"highlight_{split}_release.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in lines))
  builder = build.build("qvhighlights_shaped", str(tmp_path / "tfds"), str(manual),
                        config="tiny")
  meta = builder.info.metadata
  assert meta["feature_dim"] == 12 and sum(meta["skipped"].values()) == 0
  assert meta["num_queries"] == {"train": 12, "val": 12}
  assert meta["max_windows_per_query"] == max(
      len(r["relevant_windows"]) for split in ("train", "val")
      for r in shaped_lines(real_annotations, split, 12))
  assert set(meta["word_counts"]["train"]) <= {
      w for r in shaped_lines(real_annotations, "train", 12) for w in split_words(r["query"])}


@pytest.mark.parametrize("model", ["cmhn", "clear", "fvmr", "fian", "hscnet"])
def test_configs(model):
  config = importlib.import_module(f"vmr_jax.configs.{model}_qvhighlights").get_config()
  assert config.model == model and config.data.name == "qvhighlights"
  assert config.data.duplicate_sentences == "merge" and config.data.max_windows >= 25
  assert config.eval.moment_detr_metrics and config.eval.test_split == "val"
  shaped = importlib.import_module("vmr_jax.configs.qvhighlights_shaped").get_config(model)
  assert shaped.data.name == "qvhighlights_shaped" and shaped.data.num_clips == 64
  assert shaped.data.builder_config is None and shaped.text.encoder != "bert"
