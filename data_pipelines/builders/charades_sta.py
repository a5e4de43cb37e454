"""Charades-STA (Gao et al. 2017) from its release files.

The builder config names the feature file: `vgg` -> `vgg_features.hdf5`, likewise
`c3d` and `i3d` (`f[vid]` -> [clips, D]; D is read from the file).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from data_pipelines import annotations, features
from data_pipelines.builders import base


class CharadesSta(base.ReleaseBuilder):
  """Charades-STA: one example per video with all its sentences."""

  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name=name, description=f"{name.upper()} clip features")
      for name in ("vgg", "c3d", "i3d")
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "i3d"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put in the manual dir: `charades_sta_train.txt`, `charades_sta_test.txt` (lines
  `VID START END##sentence`), `Charades_v1_train.csv`, `Charades_v1_test.csv` (column
  `length` = duration in seconds) and `{vgg,c3d,i3d}_features.hdf5` (`f[vid]` ->
  [clips, D]) for the builder config you choose.
  """
  SPLITS = ("train", "test")
  IOU_THRESHOLDS = (0.5, 0.7)
  CHANCE_NUM_CLIPS = 16

  def read_split(self, source_dir, split, report):
    return annotations.read_charades(
        base.find_file(source_dir, f"charades_sta_{split}.txt"),
        base.find_file(source_dir, f"Charades_v1_{split}.csv"), split, report,
        self.OUT_OF_RANGE)

  def open_features(self, source_dir):
    name = f"{self.builder_config.name}_features.hdf5"
    return features.FeatureFile(base.find_file(source_dir, name))
