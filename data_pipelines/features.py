"""Reading precomputed clip features from the releases' HDF5 files.

Layouts:
- `"flat"`: `f[video_id]` is the `[clips, D]` array (TACoS `tall_c3d_features.hdf5`,
  Charades-STA `{vgg,c3d,i3d}_features.hdf5`).
- `"c3d_features"` (any dataset name): `f[video_id][name]` (ActivityNet
  `sub_activitynet_v1-3.c3d.hdf5`, `f[vid]["c3d_features"]`).

The feature dimension D is read from the file: the first video read fixes it, and a
later video with another D stops the build (`FormatError`), as does an array that is
not 2-D or a file that h5py cannot read. A video absent from the file, with no clips,
or with NaN/inf values is a record problem: `problem()` names it and the builder
skips that video.
"""

from __future__ import annotations

import h5py
import numpy as np

from data_pipelines.annotations import FormatError


class FeatureFile:
  """An open HDF5 feature file. Use as a context manager."""

  def __init__(self, path: str, dataset_name: str | None = None):
    """`dataset_name`: None for the flat layout, else the name inside each group."""
    self.path = path
    self.dataset_name = dataset_name
    self.dim: int | None = None
    self._first_video: str | None = None
    try:
      self._file = h5py.File(path, "r")
    except (OSError, ValueError) as e:
      raise FormatError(path, f"not a readable HDF5 file (truncated?): {e}") from e

  def __enter__(self) -> "FeatureFile":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    self._file.close()

  def __contains__(self, video_id: str) -> bool:
    return video_id in self._file

  def video_ids(self) -> list[str]:
    return list(self._file)

  def attribute(self, video_id: str, name: str):
    """The HDF5 attribute `name` of a video's node, None if it has none."""
    return self._file[video_id].attrs.get(name)

  def read(self, video_id: str) -> np.ndarray | None:
    """`[clips, D]` float32 features of one video; None if the video is absent."""
    if video_id not in self._file:
      return None
    node = self._file[video_id]
    field = video_id if self.dataset_name is None else f"{video_id}/{self.dataset_name}"
    if self.dataset_name is not None:
      if not isinstance(node, h5py.Group) or self.dataset_name not in node:
        raise FormatError(self.path, f"expected a group with dataset {self.dataset_name!r}",
                          video_id, field)
      node = node[self.dataset_name]
    if not isinstance(node, h5py.Dataset):
      raise FormatError(self.path, "expected a dataset of shape [clips, dim]", video_id,
                        field)
    try:
      features = np.asarray(node[()], dtype=np.float32)
    except (OSError, ValueError, TypeError) as e:
      raise FormatError(self.path, f"cannot read: {e}", video_id, field) from e
    if features.ndim != 2:
      raise FormatError(self.path, f"expected shape [clips, dim], got {features.shape}",
                        video_id, field)
    if self.dim is None:
      self.dim, self._first_video = features.shape[1], video_id
    elif features.shape[1] != self.dim:
      raise FormatError(self.path, f"feature dimension {features.shape[1]} differs from "
                        f"{self.dim} of video {self._first_video!r}", video_id, field)
    return features


def problem(features: np.ndarray | None) -> str | None:
  """The reason a video's features are unusable, or None if they are fine."""
  if features is None:
    return "video missing from features file"
  if features.shape[0] == 0:
    return "no feature clips"
  if not np.isfinite(features).all():
    return "non-finite features"
  return None
