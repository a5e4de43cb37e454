"""`python -m vmr_jax.search`'s inputs, read without flags (also
`vmr_jax.tools.long_video_recall`'s): feature files (`data_pipelines.features`), release
split files (`data_pipelines.annotations`) and a durations JSON. Errors are
`OSError`s and `ValueError`s whose first line names the bad input."""

from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

# The datasets whose builder (`data_pipelines/builders/jsonl.py` and its subclasses)
# stores each feature file's clips L2-normalized by default.
NORMALIZED_DATASETS = ("jsonl", "qvhighlights", "qvhighlights_shaped")


def stores_normalized(config) -> bool:
  """Whether a model of `config` was trained on clips L2-normalized per feature file
  (its dataset's builder's default): the default of `--l2_normalize`."""
  return config.data.name in NORMALIZED_DATASETS


def open_features(paths: str, dataset: str | None, l2_normalize: bool = False):
  """`--features` (a comma list) -> an open source (`data_pipelines.features`): one
  HDF5 file of groups with `dataset`, else `open_sources` of the list (each file's
  clips L2-normalized with `l2_normalize`, as the `jsonl` builder stores them by
  default). A missing path is a `FileNotFoundError` naming it."""
  from data_pipelines.features import FeatureFile, open_sources
  names = [p.strip() for p in paths.split(",") if p.strip()]
  if not names:
    raise ValueError(f"--features {paths!r} names no file or folder")
  for name in names:
    if not os.path.exists(name):
      raise FileNotFoundError(f"features {name}: no such file or folder")
  if dataset is not None:
    if len(names) > 1 or os.path.isdir(names[0]):
      raise ValueError("--feature_dataset reads one HDF5 file of groups, not "
                       f"--features {paths}")
    if l2_normalize:
      raise ValueError("--l2_normalize is for --features as the jsonl builder reads "
                       "them, not --feature_dataset")
    return FeatureFile(names[0], dataset)
  return open_sources(names, l2_normalize)


def _sources(source) -> list:
  return getattr(source, "sources", [source])


def source_video_ids(source) -> list[str]:
  """The videos every one of `source`'s files holds, in its first file's order."""
  parts = _sources(source)
  others = [set(s.video_ids()) for s in parts[1:]]
  return [v for v in parts[0].video_ids() if all(v in o for o in others)]


def source_attribute(source, video: str, name: str):
  """The HDF5 attribute `name` of `video` in the first HDF5 file that has it; None."""
  for part in _sources(source):
    value = part.attribute(video, name) if hasattr(part, "attribute") else None
    if value is not None:
      return value
  return None


def read_collection(path: str, dataset: str | None, durations: Mapping[str, float] | None,
                    l2_normalize: bool = False
                    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
  """The features of the videos of `durations` (every video of the files if None) and
  their durations (else each video's HDF5 attribute `duration`). `path`: `--features`;
  `l2_normalize`: `open_features`'."""
  from data_pipelines.features import problem
  with open_features(path, dataset, l2_normalize) as f:
    videos = list(durations) if durations is not None else source_video_ids(f)
    features, seconds = {}, {}
    for video in videos:
      feats = f.read(video)
      reason = problem(feats)
      if reason is not None:
        raise ValueError(f"{path}: video {video!r}: {reason}")
      features[video] = feats
      if durations is not None:
        seconds[video] = float(durations[video])
      elif source_attribute(f, video, "duration") is not None:
        seconds[video] = float(source_attribute(f, video, "duration"))
      else:
        raise ValueError(f"{path}: video {video!r} has no duration attribute; give "
                         "--durations or --annotations")
  return features, seconds


def read_annotations(path: str, kind: str):
  """Release split file -> videos (`data_pipelines.annotations.Video`), as the builders
  read them."""
  from data_pipelines import annotations
  read = {"activitynet": annotations.read_activitynet, "tacos": annotations.read_tacos,
          "jsonl": annotations.read_jsonl}[kind]
  return read(path, "search", annotations.BuildReport())


def evaluation_queries(videos, kind: str) -> list[tuple]:
  """Videos -> per query `(video_id, duration, sentence, [[start, end], ...], qid)`:
  JSON lines' queries (one `Query` per window, sharing an index) each once with all
  their windows; the other formats' queries one window each, qid None."""
  out, seen = [], {}
  for v in videos:
    for q in v.queries:
      key = (v.video_id, q.index)
      if kind == "jsonl" and key in seen:
        out[seen[key]][3].append([q.start, q.end])
        continue
      seen[key] = len(out)
      out.append((v.video_id, v.duration, q.sentence, [[q.start, q.end]],
                  q.qid if kind == "jsonl" else None))
  return out


def read_durations(path: str) -> dict[str, float]:
  """A JSON file `{video_id: seconds}`."""
  try:
    with open(path) as f:
      durations = json.load(f)
    return {str(k): float(v) for k, v in durations.items()}
  except (OSError, ValueError, TypeError, AttributeError) as e:
    raise ValueError(f"--durations {path} is not a readable JSON object {{video_id: "
                     f"seconds}} ({e})") from None
