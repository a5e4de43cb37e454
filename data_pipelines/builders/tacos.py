"""TACoS (Regneri et al. 2013; the TALL/2D-TAN split) from its release files."""

from __future__ import annotations

from data_pipelines import annotations, features
from data_pipelines.builders import base

FEATURES_FILE = "tall_c3d_features.hdf5"


class Tacos(base.ReleaseBuilder):
  """TACoS: one example per cooking video with all its sentences."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Put in the manual dir: `train.json`, `val.json`, `test.json` (2D-TAN's `data/TACoS`:
  `{{vid: {{num_frames, fps, timestamps: [[start_frame, end_frame]], sentences}}}}`)
  and `{FEATURES_FILE}` (`f[vid]` -> [clips, 4096] C3D features).
  """
  IOU_THRESHOLDS = (0.1, 0.3, 0.5)
  CHANCE_NUM_CLIPS = 128

  def read_split(self, source_dir, split, report):
    return annotations.read_tacos(base.find_file(source_dir, f"{split}.json"), split, report,
                                  self.OUT_OF_RANGE)

  def open_features(self, source_dir):
    return features.FeatureFile(base.find_file(source_dir, FEATURES_FILE))
