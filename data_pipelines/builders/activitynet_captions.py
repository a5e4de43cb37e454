"""ActivityNet Captions (Krishna et al. 2017) from its release files.

Splits follow the papers: `val` is the release's val_1, `test` is val_2 (2D-TAN
renames them `val.json` and `test.json`; either name is accepted).
"""

from __future__ import annotations

from data_pipelines import annotations, features
from data_pipelines.builders import base

FEATURES_FILE = "sub_activitynet_v1-3.c3d.hdf5"
SPLIT_FILES = {
    "train": ("train.json",),
    "val": ("val_1.json", "val.json"),
    "test": ("val_2.json", "test.json"),
}


class ActivitynetCaptions(base.ReleaseBuilder):
  """ActivityNet Captions: one example per video with all its captions."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Put in the manual dir: `train.json`, `val_1.json` (or `val.json`), `val_2.json` (or
  `test.json`) (`{{vid: {{duration, timestamps: [[start, end]] seconds, sentences}}}}`)
  and `{FEATURES_FILE}` (`f[vid]["c3d_features"]` -> [clips, 500]).
  """
  IOU_THRESHOLDS = (0.3, 0.5, 0.7)
  CHANCE_NUM_CLIPS = 64

  def read_split(self, source_dir, split, report):
    path = base.find_file(source_dir, *SPLIT_FILES[split])
    return annotations.read_activitynet(path, split, report, self.OUT_OF_RANGE)

  def open_features(self, source_dir):
    return features.FeatureFile(base.find_file(source_dir, FEATURES_FILE),
                                dataset_name="c3d_features")
