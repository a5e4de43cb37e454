"""QVHighlights-shaped data as a TFDS dataset: QVHighlights' real train and val
annotation files (the manual dir) with generated features
(`data_pipelines.shaped_features.write_qvhighlights_release`), built through the
QVHighlights reader (SlowFast + CLIP layout). Configs: `default` (128- and 64-d
feature types) and `tiny` (tests: 8 and 4)."""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from data_pipelines import shaped_features
from data_pipelines.builders import qvhighlights


@dataclasses.dataclass(kw_only=True)
class QvhighlightsShapedConfig(qvhighlights.QvhighlightsConfig):
  spec: shaped_features.QvhighlightsShapedSpec = shaped_features.QvhighlightsShapedSpec()


class QvhighlightsShaped(qvhighlights.Qvhighlights):
  """Real QVHighlights queries, windows and video lengths; word-signal features."""

  BUILDER_CONFIGS = [
      QvhighlightsShapedConfig(name="default", description="2-s clips, 128 + 64 dims",
                               spec=shaped_features.QvhighlightsShapedSpec()),
      QvhighlightsShapedConfig(name="tiny", description="tests: 2-s clips, 8 + 4 dims",
                               spec=shaped_features.QvhighlightsShapedSpec(dims=(8, 4))),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put in the manual dir QVHighlights' `highlight_train_release.jsonl` and
  `highlight_val_release.jsonl` (Moment-DETR's data/); features are generated.
  """

  def source_dir(self, dl_manager) -> str:
    release_dir = os.path.join(os.fspath(dl_manager.download_dir),
                               "qvhighlights_shaped_release", self.builder_config.name)
    shaped_features.write_qvhighlights_release(
        os.fspath(dl_manager.manual_dir), release_dir, self.builder_config.spec)
    self.use_release(release_dir)
    return release_dir
