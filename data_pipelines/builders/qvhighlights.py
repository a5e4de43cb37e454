"""QVHighlights (Lei et al., 2021, Moment-DETR) from its release files, through the
JSON-lines builder (`jsonl.py`): the same records, checks, report and Moment-DETR
metrics, with the release's file names, splits, clip length and feature types.

    python -m data_pipelines.build qvhighlights --manual_dir=QVHIGHLIGHTS \
        --data_dir=~/tensorflow_datasets [--config=slowfast_clip|slowfast|clip]

The manual dir holds, as Moment-DETR's repository and its feature archive lay them
out (each either at the top or under `data/`, resp. `features/`):
- `highlight_train_release.jsonl`, `highlight_val_release.jsonl`: the splits `train`
  and `val`. The test split's annotations are withheld (its file has no
  `relevant_windows`), so it is not built; the configs score their best checkpoint on
  val, the split Moment-DETR's tables report (`configs/default.py:
  use_qvhighlights`).
- `slowfast_features/<vid>.npz` (2304-d) and `clip_features/<vid>.npz` (512-d), one
  `[clips, D]` array of 2-second clips per video under `features`.

Configs: the feature types of the release, each L2-normalized per clip and
concatenated in this order as Moment-DETR's `StartEndDataset` does:
`slowfast_clip` (2816-d, Moment-DETR's default), `slowfast`, `clip`.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from data_pipelines.builders import base, jsonl

ANNOTATION_FILES = {"train": "highlight_train_release.jsonl",
                    "val": "highlight_val_release.jsonl"}
CLIP_SECONDS = 2.0


@dataclasses.dataclass(kw_only=True)
class QvhighlightsConfig(tfds.core.BuilderConfig):
  feature_dirs: tuple[str, ...] = ("slowfast_features", "clip_features")


class Qvhighlights(jsonl.Jsonl):
  """QVHighlights' release; see the module docstring."""

  BUILDER_CONFIGS = [
      QvhighlightsConfig(name="slowfast_clip", description="SlowFast + CLIP, 2816-d",
                         feature_dirs=("slowfast_features", "clip_features")),
      QvhighlightsConfig(name="slowfast", description="SlowFast, 2304-d",
                         feature_dirs=("slowfast_features",)),
      QvhighlightsConfig(name="clip", description="CLIP, 512-d",
                         feature_dirs=("clip_features",)),
  ]
  SPLITS = tuple(ANNOTATION_FILES)
  CHANCE_NUM_CLIPS = 75  # a 150-s video's 2-s clips
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put in the manual dir QVHighlights' `highlight_train_release.jsonl` and
  `highlight_val_release.jsonl` (Moment-DETR's data/) and the folders
  `slowfast_features/` and `clip_features/` of its feature archive (or the archive's
  `features/` folder itself).
  """

  def __init__(self, **kwargs):
    super().__init__(clip_seconds=CLIP_SECONDS, **kwargs)

  def source_dir(self, dl_manager) -> str:
    manual_dir = os.fspath(dl_manager.manual_dir)
    self.use_release(manual_dir)
    return manual_dir

  def use_release(self, folder: str) -> None:
    """Finds the annotation files and feature folders of this config in `folder`."""
    self.files = {split: base.find_file(folder, name, os.path.join("data", name))
                  for split, name in ANNOTATION_FILES.items()}
    self.feature_paths = [base.find_file(folder, name, os.path.join("features", name))
                          for name in self.builder_config.feature_dirs]
