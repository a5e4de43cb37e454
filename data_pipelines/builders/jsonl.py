"""Any dataset in Moment-DETR's JSON-lines format, with one feature file per video.

    python -m data_pipelines.build jsonl --annotations=train.jsonl,val.jsonl \
        --features=DIR_or_FILE[,DIR_or_FILE...] --data_dir=OUT [--splits=train,val] \
        [--clip_seconds=2] [--nol2_normalize]

Annotations (`data_pipelines.annotations.read_jsonl`): one JSON object a line, `qid`,
`query`, `vid`, `duration` and `relevant_windows` [[start, end], ...] in seconds
(QVHighlights' `highlight_{train,val}_release.jsonl`). Split names: `--splits`, one
per file in order, else from each file's name: `train`, `val` or `test` when exactly
one of them is a word of the name (`highlight_val_release.jsonl` -> `val`; words
split at `_`, `-`, `.`), else the name without `.jsonl`. A split file with no labels
at all (e.g. QVHighlights' test) cannot be built (`FormatError`): leave it out;
lines without `relevant_windows` in a labeled file are skipped and reported.

Features (`data_pipelines.features.open_sources`): each of `--features` is a folder
of `<vid>.npz` (array `features`, `[clips, D]`, Moment-DETR's layout) or one HDF5
file (`f[vid]` -> `[clips, D]`); several are cut to the fewest clips and
concatenated along the last axis, each first L2-normalized per clip (Moment-DETR's
`normalize_v`; `l2_normalize=False` stores them as read), e.g. SlowFast + CLIP:
`--features=slowfast_features,clip_features`.

Clips are `clip_seconds` long (Moment-DETR's `clip_length`, 2 s): clip i covers
[i c, (i + 1) c), so a video of d seconds has n = ceil(d / c) clips. A video with
more stored clips keeps its first n (the others start after its end); a video whose
clip count differs from n by more than one (features that do not span the video, or
another clip length) is skipped and reported ("features do not span the video").

Each example is one video; a query with several windows is one row of `queries` per
window (its line in the file as `index`, its `qid` as JSON text in `qid`), which
`data.duplicate_sentences = "merge"` turns back into one query with all its windows
(`gt_windows`); the input pipeline refuses "separate" on a dataset with several
windows per query. The metadata also holds `clip_seconds`, `l2_normalize`, the split
files' names and `moment_detr_metrics: True`, which makes evaluation report
Moment-DETR's mAP and R1 (`vmr_jax.metrics.moment_detr_metrics`).

One dataset per `--data_dir`: TFDS names every such build `jsonl`.
"""

from __future__ import annotations

import json
import math
import os
import re

import tensorflow_datasets as tfds

from data_pipelines import annotations as annotations_lib, features as features_lib
from data_pipelines.builders import base

SPLIT_WORDS = ("train", "val", "test")


def split_names(paths: list[str], splits: list[str] | None = None) -> list[str]:
  """The split of each annotation file (module docstring); a clear error for names
  that are not distinct identifiers or a count that does not match."""
  if splits:
    if len(splits) != len(paths):
      raise ValueError(f"--splits names {len(splits)} splits for {len(paths)} "
                       "annotation files; give one per file, in order")
    names = list(splits)
  else:
    names = []
    for path in paths:
      stem = re.sub(r"\.jsonl$", "", os.path.basename(path))
      words = [w for w in re.split(r"[_.\-]", stem) if w in SPLIT_WORDS]
      names.append(words[0] if len(set(words)) == 1 else stem)
  for name, path in zip(names, paths):
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
      raise ValueError(f"{path}: split name {name!r} is not a word (letters, digits, _); "
                       "name the splits with --splits")
  if len(set(names)) != len(names):
    raise ValueError(f"annotation files {', '.join(paths)} give the splits "
                     f"{', '.join(names)}, not distinct: name them with --splits")
  return names


class Jsonl(base.ReleaseBuilder):
  """Moment-DETR JSON lines + per-video features; see the module docstring."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = None
  IOU_THRESHOLDS = (0.3, 0.5, 0.7)
  CHANCE_NUM_CLIPS = 64

  def __init__(self, *, annotations: list[str] = (), features: list[str] = (),
               splits: list[str] | None = None, clip_seconds: float = 2.0,
               l2_normalize: bool = True, out_of_range: str = "clip", **kwargs):
    """The source arguments are needed to build, not to read a built dataset."""
    super().__init__(**kwargs)
    if annotations:
      names = split_names(list(annotations), splits)
      self.files = dict(zip(names, annotations))
      self.SPLITS = tuple(names)
    if not (clip_seconds > 0 and math.isfinite(clip_seconds)):
      raise ValueError(f"clip_seconds must be > 0, got {clip_seconds}")
    self.feature_paths = list(features)
    self.clip_seconds, self.l2_normalize = float(clip_seconds), l2_normalize
    self.OUT_OF_RANGE = out_of_range

  def query_features(self):
    return {**super().query_features(), "qid": tfds.features.Text()}

  def query_values(self, queries):
    return {**super().query_values(queries), "qid": [json.dumps(q.qid) for q in queries]}

  def source_dir(self, dl_manager) -> str:
    del dl_manager
    if not getattr(self, "files", None) or not self.feature_paths:
      raise ValueError("jsonl needs --annotations=FILE[,FILE...] and "
                       "--features=DIR_or_FILE[,...]")
    return ""

  def read_split(self, source_dir, split, report):
    del source_dir
    return annotations_lib.read_jsonl(self.files[split], split, report, self.OUT_OF_RANGE)

  def open_features(self, source_dir):
    del source_dir
    return features_lib.open_sources(self.feature_paths, self.l2_normalize)

  def fit_features(self, split, video, feats, report):
    clips = math.ceil(video.duration / self.clip_seconds - 1e-6)
    if abs(len(feats) - clips) > 1:
      report.add(annotations_lib.Problem(
          split, video.video_id, None, "skipped", "features do not span the video",
          f"{len(feats)} clips of {self.clip_seconds:g} s for a {video.duration:g} s "
          f"video ({clips} clips); {len(video.queries)} usable windows dropped"))
      return None
    return feats[:clips]

  def _metadata(self):
    return {**super()._metadata(), "clip_seconds": self.clip_seconds,
            "l2_normalize": self.l2_normalize,
            "annotation_files": {s: os.path.basename(p) for s, p in self.files.items()},
            "moment_detr_metrics": True}
