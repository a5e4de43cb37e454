"""The synthetic benchmark as a TFDS dataset, built through the TACoS reader.

The builder first writes the corpus of `data_pipelines.synthetic_corpus` (TACoS and
ActivityNet formats, GloVe vectors, WordPiece vocab) into `release_dir` (default:
`<download_dir>/synthetic_release/<config>`), then builds from its TACoS-format copy
exactly as the `tacos` builder does. Configs: `default` (the demo) and `tiny` (tests).
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from data_pipelines import synthetic_corpus
from data_pipelines.builders import tacos


@dataclasses.dataclass(kw_only=True)
class SyntheticConfig(tfds.core.BuilderConfig):
  spec: synthetic_corpus.CorpusSpec = synthetic_corpus.CorpusSpec()


class Synthetic(tacos.Tacos):
  """Concept events in noise with ordinal/relational sentences; see synthetic_corpus."""

  BUILDER_CONFIGS = [
      SyntheticConfig(name="default", description="demo: 500/100/100 videos, 64-d",
                      spec=synthetic_corpus.CorpusSpec()),
      SyntheticConfig(name="tiny", description="tests: 12/4/4 videos, 16-d",
                      spec=synthetic_corpus.CorpusSpec(
                          num_videos=(12, 4, 4), min_clips=16, max_clips=40,
                          feature_dim=16, num_concepts=8, glove_dim=8)),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = None
  IOU_THRESHOLDS = (0.1, 0.3, 0.5, 0.7)
  CHANCE_NUM_CLIPS = 64

  def __init__(self, *, release_dir: str | None = None, **kwargs):
    super().__init__(**kwargs)
    self.release_dir = release_dir

  def source_dir(self, dl_manager) -> str:
    release_dir = self.release_dir or os.path.join(
        os.fspath(dl_manager.download_dir), "synthetic_release", self.builder_config.name)
    synthetic_corpus.write_corpus(release_dir, self.builder_config.spec)
    return os.path.join(release_dir, "tacos")
