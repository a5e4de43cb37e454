"""Reading precomputed clip features: the releases' HDF5 files and Moment-DETR's
folders of one `.npz` per video.

Layouts:
- HDF5 `"flat"`: `f[video_id]` is the `[clips, D]` array (TACoS
  `tall_c3d_features.hdf5`, Charades-STA `{vgg,c3d,i3d}_features.hdf5`).
- HDF5 `"c3d_features"` (any dataset name): `f[video_id][name]` (ActivityNet
  `sub_activitynet_v1-3.c3d.hdf5`, `f[vid]["c3d_features"]`).
- A folder of `<video_id>.npz`, each with the `[clips, D]` array under the key
  `"features"` (Moment-DETR's `data/*_features/<feature type>/`; `NpzFolder`).
- Several of these side by side (`ConcatFeatures`): a video's arrays cut to the
  shortest and concatenated along the last axis, as Moment-DETR's
  `StartEndDataset._get_video_feat_by_vid` joins SlowFast and CLIP features (their
  clip counts can differ by one).

The feature dimension D is read from the files: the first video read fixes it, and a
later video with another D stops the build (`FormatError`), as does an array that is
not 2-D or a file that h5py or numpy cannot read. A video absent from the files, with
no clips, or with NaN/inf values is a record problem: `problem()` names it and the
builder skips that video.
"""

from __future__ import annotations

import os
import zipfile

import h5py
import numpy as np

from data_pipelines.annotations import FormatError


class _Features:
  """What every feature source shares: a context manager, and the dimension D fixed
  by the first video read (`_checked`)."""

  path: str
  dim: int | None = None
  _first_video: str | None = None

  def __enter__(self):
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    pass

  def _checked(self, features: np.ndarray, video_id: str, field: str) -> np.ndarray:
    """`features` if `[clips, D]` with this source's D; `FormatError` otherwise."""
    if features.ndim != 2:
      raise FormatError(self.path, f"expected shape [clips, dim], got {features.shape}",
                        video_id, field)
    if self.dim is None:
      self.dim, self._first_video = features.shape[1], video_id
    elif features.shape[1] != self.dim:
      raise FormatError(self.path, f"feature dimension {features.shape[1]} differs from "
                        f"{self.dim} of video {self._first_video!r}", video_id, field)
    return features


class FeatureFile(_Features):
  """An open HDF5 feature file. Use as a context manager."""

  def __init__(self, path: str, dataset_name: str | None = None):
    """`dataset_name`: None for the flat layout, else the name inside each group."""
    self.path = path
    self.dataset_name = dataset_name
    try:
      self._file = h5py.File(path, "r")
    except (OSError, ValueError) as e:
      raise FormatError(path, f"not a readable HDF5 file (truncated?): {e}") from e

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
    return self._checked(features, video_id, field)


class NpzFolder(_Features):
  """A folder of `<video_id>.npz` files, the `[clips, D]` array under `key`."""

  def __init__(self, path: str, key: str = "features"):
    if not os.path.isdir(path):
      raise FormatError(path, "not a folder of <video id>.npz feature files")
    self.path, self.key = path, key

  def __contains__(self, video_id: str) -> bool:
    return os.path.isfile(self._file(video_id))

  def video_ids(self) -> list[str]:
    return sorted(name[:-len(".npz")] for name in os.listdir(self.path)
                  if name.endswith(".npz"))

  def read(self, video_id: str) -> np.ndarray | None:
    """`[clips, D]` float32 features of one video; None if it has no file."""
    path = self._file(video_id)
    if not os.path.isfile(path):
      return None
    try:
      with np.load(path) as npz:
        if self.key not in npz.files:
          raise FormatError(path, f"no array {self.key!r} (it has {', '.join(npz.files)})",
                            video_id, self.key)
        features = np.asarray(npz[self.key], dtype=np.float32)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
      raise FormatError(path, f"not a readable .npz file (truncated?): {e}",
                        video_id) from e
    return self._checked(features, video_id, self.key)

  def _file(self, video_id: str) -> str:
    return os.path.join(self.path, f"{video_id}.npz")


class ConcatFeatures(_Features):
  """Several sources read as one: each video's arrays cut to the fewest clips and
  concatenated along the last axis (D = the sum), in the sources' order. Optionally
  each source's clips are first L2-normalized (Moment-DETR's `normalize_v`)."""

  def __init__(self, sources: list, l2_normalize: bool = False):
    self.sources, self.l2_normalize = sources, l2_normalize
    self.path = ",".join(s.path for s in sources)

  def close(self) -> None:
    for source in self.sources:
      source.close()

  def __contains__(self, video_id: str) -> bool:
    return all(video_id in s for s in self.sources)

  def read(self, video_id: str) -> np.ndarray | None:
    """`[clips, sum of D]` float32; None if any source lacks the video."""
    parts = [s.read(video_id) for s in self.sources]
    if any(p is None for p in parts):
      return None
    clips = min(len(p) for p in parts)
    if self.l2_normalize:
      parts = [p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-6)
               for p in parts]
    self.dim = sum(s.dim for s in self.sources)
    return np.concatenate([p[:clips] for p in parts], axis=-1).astype(np.float32)


def open_sources(paths: list[str], l2_normalize: bool = False) -> ConcatFeatures:
  """`ConcatFeatures` of `paths`, each a folder of `.npz` files (`NpzFolder`) or a
  flat-layout HDF5 file (`FeatureFile`)."""
  if not paths:
    raise ValueError("no feature sources given")
  sources = []
  try:
    for path in paths:
      if not os.path.exists(path):
        raise FileNotFoundError(f"features {path}: no such file or folder")
      sources.append(NpzFolder(path) if os.path.isdir(path) else FeatureFile(path))
  except BaseException:
    for source in sources:
      source.close()
    raise
  return ConcatFeatures(sources, l2_normalize)


def problem(features: np.ndarray | None) -> str | None:
  """The reason a video's features are unusable, or None if they are fine."""
  if features is None:
    return "video missing from features file"
  if features.shape[0] == 0:
    return "no feature clips"
  if not np.isfinite(features).all():
    return "non-finite features"
  return None
