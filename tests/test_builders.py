"""The TFDS builders on tiny files written in the exact release formats."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import build
from data_pipelines.annotations import FormatError
from data_pipelines.builders.base import REPORT_FILE
from tests.conftest import REPO
from tests.release_files import (VIDEOS_PER_SPLIT, random_features, take,
                                 write_charades_release)


def build_and_load(name, manual_dir, data_dir, config=None):
  builder = build.build(name, str(data_dir), manual_dir=str(manual_dir), config=config)
  return builder, {s: list(tfds.as_numpy(builder.as_dataset(split=s)))
                   for s in builder.info.splits}


def test_tacos(tacos_dir, tmp_path_factory, real_annotations):
  builder, splits = build_and_load("tacos", tacos_dir, tmp_path_factory.mktemp("d"))
  assert builder.info.metadata["feature_dim"] == 32
  raw = json.loads((tacos_dir / "train.json").read_text())
  train = {ex["video_id"].decode(): ex for ex in splits["train"]}
  assert set(train) == set(raw)
  vid, entry = next(iter(raw.items()))
  ex = train[vid]
  assert ex["features"].shape[1] == 32
  assert ex["duration"] == pytest.approx(entry["num_frames"] / entry["fps"])
  assert ex["num_queries"] == len(entry["sentences"])
  i = int(np.argmax(ex["queries"]["index"] == 0))
  assert ex["queries"]["start"][i] == pytest.approx(entry["timestamps"][0][0] / entry["fps"])
  assert ex["queries"]["sentence"][i].decode() == entry["sentences"][0].strip()
  assert builder.info.metadata["num_queries"]["train"] == sum(
      len(e["sentences"]) for e in raw.values())
  chance = builder.info.metadata["chance"]
  assert chance["num_clips"] == 128
  assert set(chance["by_split"]["test"]) >= {"R@1,IoU=0.5", "R@5,IoU=0.1", "mIoU"}


def test_missing_and_bad_features_are_skipped_and_reported(tacos_dir, tmp_path_factory):
  raw = json.loads((tacos_dir / "train.json").read_text())
  first, second = list(raw)[:2]
  with h5py.File(tacos_dir / "tall_c3d_features.hdf5", "a") as f:
    del f[first]
    data = f[second][()]
    data[0, 0] = np.nan
    del f[second]
    f[second] = data
  builder, splits = build_and_load("tacos", tacos_dir, tmp_path_factory.mktemp("d"))
  assert len(splits["train"]) == VIDEOS_PER_SPLIT - 2
  report = json.loads((builder.data_path / REPORT_FILE).read_text())
  assert report["skipped"] == {"video missing from features file": 1,
                               "non-finite features": 1}
  assert {r["video_id"] for r in report["records"]} == {first, second}
  assert builder.info.metadata["skipped"] == report["skipped"]


def test_inconsistent_feature_dim_stops_the_build(tacos_dir, tmp_path_factory):
  raw = json.loads((tacos_dir / "val.json").read_text())
  vid = next(iter(raw))
  with h5py.File(tacos_dir / "tall_c3d_features.hdf5", "a") as f:
    del f[vid]
    f[vid] = np.ones((10, 31), np.float32)
  data_dir = tmp_path_factory.mktemp("d")
  with pytest.raises(FormatError, match=f"{vid}.*dimension 31 differs"):
    build.build("tacos", str(data_dir), manual_dir=str(tacos_dir))
  assert not list(data_dir.glob("tacos/*/dataset_info.json"))  # nothing half-built


def test_activitynet_accepts_both_split_names(tmp_path, tmp_path_factory, real_annotations):
  rng = np.random.default_rng(1)
  names = {"train": "train.json", "val": "val_1.json", "test": "test.json"}
  durations = {}
  for split, name in names.items():
    data = take(json.loads((real_annotations / "activitynet_captions" / f"{split}.json")
                           .read_text()), VIDEOS_PER_SPLIT)
    (tmp_path / name).write_text(json.dumps(data))
    durations.update({v: e["duration"] for v, e in data.items()})
  with h5py.File(tmp_path / "sub_activitynet_v1-3.c3d.hdf5", "w") as f:
    for vid, feats in random_features(durations, 500, rng).items():
      f.create_group(vid)["c3d_features"] = feats
  builder, splits = build_and_load("activitynet_captions", tmp_path,
                                   tmp_path_factory.mktemp("d"))
  assert builder.info.metadata["feature_dim"] == 500
  assert {s: len(v) for s, v in splits.items()} == {"train": 3, "val": 3, "test": 3}
  (tmp_path / "val.json").write_text((tmp_path / "val_1.json").read_text())
  with pytest.raises(FileExistsError, match="val_1.json and val.json"):
    build.build("activitynet_captions", str(tmp_path_factory.mktemp("d")),
                manual_dir=str(tmp_path))


def test_charades_reads_feature_dim_from_file(tmp_path, tmp_path_factory, real_annotations):
  write_charades_release(tmp_path, real_annotations, 8, "vgg_features.hdf5", 64, seed=2)
  builder, splits = build_and_load("charades_sta", tmp_path, tmp_path_factory.mktemp("d"),
                                   config="vgg")
  assert builder.info.metadata["feature_dim"] == 64
  queries = sum(int(ex["num_queries"]) for ex in splits["train"])
  report = json.loads((builder.data_path / REPORT_FILE).read_text())
  assert queries + sum(report["skipped"].values()) == 8
  for ex in splits["train"] + splits["test"]:
    assert (ex["queries"]["end"] <= ex["duration"] + 1e-6).all()
  with pytest.raises(FileNotFoundError, match="i3d_features.hdf5"):
    build.build("charades_sta", str(tmp_path_factory.mktemp("d")), manual_dir=str(tmp_path))


def test_synthetic_tiny_and_the_real_builders_on_its_files(tiny_data_dir, tiny_release,
                                                           tmp_path_factory):
  synthetic = tfds.builder("synthetic/tiny", data_dir=str(tiny_data_dir))
  assert synthetic.info.splits["train"].num_examples == 12
  meta = synthetic.info.metadata
  assert meta["feature_dim"] == 16 and meta["skipped"] == {} and meta["clipped"] == {}
  for name in ("tacos", "activitynet_captions"):
    builder, splits = build_and_load(name, tiny_release / name, tmp_path_factory.mktemp("d"))
    assert builder.info.metadata["num_queries"] == meta["num_queries"]
    assert len(splits["test"]) == 4


def test_build_cli(tmp_path):
  """The command a user types, end to end, with its summary."""
  out = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", "synthetic", "--config=tiny",
       f"--data_dir={tmp_path / 'data'}", f"--manual_dir={tmp_path / 'release'}"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  assert "train: 12 videos" in out.stdout and "chance on test" in out.stdout
  assert (tmp_path / "release" / "tacos" / "tall_c3d_features.hdf5").exists()
  bad = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", "tacos", f"--data_dir={tmp_path}",
       f"--manual_dir={tmp_path / 'nowhere'}"], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert bad.returncode == 1 and "nowhere is not a folder" in bad.stderr
