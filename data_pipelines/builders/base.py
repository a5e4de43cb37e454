"""The TFDS builder that all release-format datasets share.

A subclass says where its split files and features are (`read_split`,
`open_features`) and which IoU thresholds its papers report; this class turns the
records into TFDS examples, one per video:

    video_id   Text
    duration   float32 seconds
    features   float32 [clips, D] as stored in the HDF5 file (D from the file)
    num_queries int32 (rows of `queries`)
    queries    Sequence of {sentence: Text, words: Sequence(Text) (`split_words`),
               start, end: float32 seconds, index: int32 (position in the release)}

A query with several windows (the JSON-lines format, `jsonl.py`) is one row per
window, all with its index and sentence; the statistics below count it once (rows
grouped by index).

After generation, `DatasetInfo.metadata` holds `feature_dim`, per-split word counts
and query counts, the IoU thresholds, the chance level of each metric (a hit on any
of a query's windows), `max_windows_per_query`, and the skip/clip counts;
`build_report.json` next to the TFRecords lists every skipped or clipped record.
Videos whose features are missing or unusable (`fit_features`), and videos left
with no usable query, are skipped and reported.
"""

from __future__ import annotations

import abc
import collections
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import annotations, features as features_lib
from data_pipelines.chance import chance_levels
from data_pipelines.words import split_words

REPORT_FILE = "build_report.json"
RECALL_AT = (1, 5)


class ReleaseBuilder(tfds.core.GeneratorBasedBuilder, abc.ABC):
  """Base of the TACoS / ActivityNet Captions / Charades-STA builders."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  SPLITS: tuple[str, ...] = ("train", "val", "test")
  IOU_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
  # Clip grid of the chance levels: 2D-TAN's map size for the dataset.
  CHANCE_NUM_CLIPS: int = 64
  OUT_OF_RANGE = "clip"

  @abc.abstractmethod
  def read_split(self, source_dir: str, split: str,
                 report: annotations.BuildReport) -> list[annotations.Video]:
    """Reads and validates one split's annotation file(s)."""

  @abc.abstractmethod
  def open_features(self, source_dir: str) -> features_lib.FeatureFile:
    """Opens the HDF5 feature file."""

  def source_dir(self, dl_manager) -> str:
    """The folder with the release files: the manual dir."""
    return os.fspath(dl_manager.manual_dir)

  def fit_features(self, split: str, video: annotations.Video, features: np.ndarray,
                   report: annotations.BuildReport) -> np.ndarray | None:
    """A video's usable features as they are stored (these builders: as read), or None
    to skip the video, reported."""
    del split, video, report
    return features

  def query_features(self) -> dict:
    """The TFDS features of one row of `queries`."""
    return {
        "sentence": tfds.features.Text(),
        "words": tfds.features.Sequence(tfds.features.Text()),
        "start": np.float32,
        "end": np.float32,
        "index": np.int32,
    }

  def query_values(self, queries: list[annotations.Query]) -> dict:
    """The `queries` sequence of one example (`query_features`' keys but `words`)."""
    return {
        "sentence": [q.sentence for q in queries],
        "start": [q.start for q in queries],
        "end": [q.end for q in queries],
        "index": [q.index for q in queries],
    }

  def _info(self) -> tfds.core.DatasetInfo:
    query = self.query_features()
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "video_id": tfds.features.Text(),
            "duration": np.float32,
            "features": tfds.features.Tensor(shape=(None, None), dtype=np.float32,
                                              encoding="bytes"),
            "num_queries": np.int32,
            "queries": tfds.features.Sequence(query),
        }),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # the source was resolved in _download_and_prepare
    return {split: self._generate_examples(self._source, split) for split in self.SPLITS}

  def _generate_examples(self, source_dir: str, split: str):
    report = self._report
    videos = self.read_split(source_dir, split, report)
    words, windows, durations, kept_videos = collections.Counter(), [], [], 0
    for video in videos:
      feats = self._features.read(video.video_id)
      reason = features_lib.problem(feats)
      if reason is None and not video.queries:
        reason = "no usable query"
      if reason is not None:
        report.add(annotations.Problem(split, video.video_id, None, "skipped", reason,
                                       f"{len(video.queries)} usable queries dropped"))
        continue
      feats = self.fit_features(split, video, feats, report)
      if feats is None:
        continue
      kept_videos += 1
      query_words = [split_words(q.sentence) for q in video.queries]
      by_index: dict[int, list] = {}
      for q, w in zip(video.queries, query_words):
        if q.index not in by_index:
          words.update(w)
        by_index.setdefault(q.index, []).append((q.start, q.end))
      windows.extend(np.array(w, np.float64) for w in by_index.values())
      durations.extend([video.duration] * len(by_index))
      yield video.video_id, {
          "video_id": video.video_id,
          "duration": video.duration,
          "features": feats,
          "num_queries": len(video.queries),
          "queries": {**self.query_values(video.queries), "words": query_words},
      }
    report.count_kept(split, kept_videos, len(windows))
    self._split_stats[split] = (dict(words), windows, np.array(durations))

  def _download_and_prepare(self, dl_manager, download_config=None):
    self._source = self.source_dir(dl_manager)
    self._report = annotations.BuildReport()
    self._split_stats = {}
    with self.open_features(self._source) as self._features:
      super()._download_and_prepare(dl_manager=dl_manager, download_config=download_config)
    self.info.metadata.update(self._metadata())
    with open(os.path.join(self.data_dir, REPORT_FILE), "w") as f:
      json.dump(self._report.to_json(), f, indent=1)

  def _metadata(self) -> dict:
    chance = {}
    for split, (_, windows, durations) in self._split_stats.items():
      if len(windows):
        chance[split] = chance_levels(windows, durations, self.CHANCE_NUM_CLIPS,
                                      RECALL_AT, self.IOU_THRESHOLDS)
    return {
        "feature_dim": self._features.dim,
        "iou_thresholds": list(self.IOU_THRESHOLDS),
        "recall_at": list(RECALL_AT),
        "num_queries": {s: len(stats[1]) for s, stats in self._split_stats.items()},
        "word_counts": {s: stats[0] for s, stats in self._split_stats.items()},
        "chance": {"num_clips": self.CHANCE_NUM_CLIPS, "by_split": chance},
        "max_windows_per_query": max((len(w) for _, ws, _ in self._split_stats.values()
                                      for w in ws), default=0),
        "skipped": self._report.counts("skipped"),
        "clipped": self._report.counts("clipped"),
    }


def find_file(source_dir: str, *names: str) -> str:
  """The one existing file among `names` in `source_dir`; a clear error otherwise."""
  found = [n for n in names if os.path.exists(os.path.join(source_dir, n))]
  if not found:
    raise FileNotFoundError(
        f"{source_dir}: none of {', '.join(names)} found; put the release files there "
        "(see the dataset's manual download instructions)")
  if len(found) > 1:
    raise FileExistsError(
        f"{source_dir}: both {' and '.join(found)} exist; they name the same split, "
        "keep one")
  return os.path.join(source_dir, found[0])
