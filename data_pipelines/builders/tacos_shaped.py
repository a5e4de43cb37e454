"""TACoS-shaped data as a TFDS dataset: the real TACoS annotation files (the manual
dir) with generated features (`data_pipelines.shaped_features`), built through the TACoS
reader. Configs: `default` (128 rows x 4096, C3D-sized) and `tiny` (tests)."""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from data_pipelines import shaped_features
from data_pipelines.builders import tacos


@dataclasses.dataclass(kw_only=True)
class TacosShapedConfig(tfds.core.BuilderConfig):
  spec: shaped_features.TacosShapedSpec = shaped_features.TacosShapedSpec()


class TacosShaped(tacos.Tacos):
  """Real TACoS sentences, spans and video lengths; word-signal features."""

  BUILDER_CONFIGS = [
      TacosShapedConfig(name="default", description="128 clips x 4096 per video",
                        spec=shaped_features.TacosShapedSpec()),
      TacosShapedConfig(name="tiny", description="tests: 8 clips x 16 per video",
                        spec=shaped_features.TacosShapedSpec(clips=8, feature_dim=16)),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put in the manual dir the TACoS annotation files `train.json`, `val.json`,
  `test.json` (2D-TAN's data/TACoS); features are generated.
  """

  def source_dir(self, dl_manager) -> str:
    release_dir = os.path.join(os.fspath(dl_manager.download_dir), "tacos_shaped_release",
                               self.builder_config.name)
    shaped_features.write_release(os.fspath(dl_manager.manual_dir), release_dir,
                               self.builder_config.spec)
    return release_dir
