"""The input pipeline's settings (`config.data`); importable without TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

BATCH_KINDS = ("video", "query")
SHORT_VIDEO_RULES = ("stretch", "pad")
PARAGRAPH_RULES = ("", "time", "release")  # see data_pipelines.input_pipeline
DUPLICATE_RULES = ("separate", "merge")  # a sentence annotated more than once in a video
# Batch keys with one entry per query (a Q axis in video-level batches, none in
# query-level ones).
PER_QUERY_KEYS = frozenset({"query_tokens", "query_mask", "query_wordpiece",
                            "query_wordpiece_mask", "gt_times", "gt_windows", "query_index",
                            "sentence", "qid",
                            "verb_tokens", "noun_tokens", "role_edges"})


class DatasetNotBuiltError(FileNotFoundError):
  """The config's dataset has not been built under its data_dir (the message gives the
  build command); defined here so the command line catches it without TensorFlow."""


class DataMismatchError(ValueError):
  """`config.data` settings the built dataset cannot be read with (the message names
  the field to change); defined here so the command line catches it without
  TensorFlow."""


class NotInDatasetError(LookupError):
  """A split or video the built dataset does not have (the message names the closest);
  defined here so the command line catches it without TensorFlow."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The `config.data` fields the pipeline reads (see the module docstring)."""
  name: str = "synthetic"
  data_dir: str = ""
  builder_config: str | None = None  # e.g. "tiny" (synthetic), "i3d" (charades_sta)
  num_clips: int = 64
  short_videos: str = "stretch"
  clip_seconds: float = 0.0  # > 0: clips at this rate, variable length, masked
  batch_kind: str = "video"
  max_queries: int = 8
  eval_max_queries: int = 0  # evaluation's chunk size; 0 = max_queries
  max_words: int = 20
  word_min_count: int = 1
  wordpiece_vocab: str = ""
  max_wordpiece: int = 32
  paragraphs: str = ""  # "" (queries, no paragraphs) | time | release
  duplicate_sentences: str = "separate"  # separate | merge (one query, all its windows)
  max_windows: int = 16  # merge: annotated windows kept per sentence (more is an error)
  srl_file: str = ""  # AllenNLP SRL JSON lines: adds semantic role trees to batches
  max_verbs: int = 4  # tree limits (FVMR Sec. 4.2) and words per tree node
  max_nouns: int = 6
  max_node_words: int = 8
  shuffle_buffer: int = 512  # examples; memory ~ buffer * num_clips * D * 4 bytes
  video_shuffle_buffer: int = 16  # videos, before decoding
  train_split: str = "train"

  def __post_init__(self):
    if self.batch_kind not in BATCH_KINDS:
      raise ValueError(f"batch_kind must be one of {BATCH_KINDS}, got {self.batch_kind!r}")
    if self.short_videos not in SHORT_VIDEO_RULES:
      raise ValueError(f"short_videos must be one of {SHORT_VIDEO_RULES}, "
                       f"got {self.short_videos!r}")
    if self.paragraphs not in PARAGRAPH_RULES:
      raise ValueError(f"paragraphs must be one of {PARAGRAPH_RULES}, got {self.paragraphs!r}")
    if self.duplicate_sentences not in DUPLICATE_RULES:
      raise ValueError(f"duplicate_sentences must be one of {DUPLICATE_RULES}, "
                       f"got {self.duplicate_sentences!r}")
    if self.duplicate_sentences == "merge" and self.paragraphs == "release":
      # A release paragraph is one annotator's description in its order: merging a
      # sentence repeated across descriptions would take it out of all but one.
      raise ValueError("duplicate_sentences=merge needs paragraphs='' or 'time' (a "
                       "release paragraph keeps every sentence in its place)")
    if not self.clip_seconds >= 0:
      raise ValueError(f"clip_seconds must be >= 0 (0: num_clips clips a video), "
                       f"got {self.clip_seconds!r}")
    for field in ("num_clips", "max_queries", "max_windows", "max_words", "max_wordpiece",
                  "max_verbs", "max_nouns", "max_node_words"):
      if getattr(self, field) < 1:
        raise ValueError(f"{field} must be >= 1")

  @classmethod
  def from_config(cls, config: Mapping[str, Any]) -> "DataConfig":
    """From a `config.data` ConfigDict or dict; unknown fields are an error."""
    items = dict(config.items())
    unknown = set(items) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f"unknown config.data fields: {sorted(unknown)}")
    return cls(**items)
