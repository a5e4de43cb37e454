import h5py
import numpy as np
import pytest

from data_pipelines import features
from data_pipelines.annotations import FormatError


def make_file(path, videos, group=None):
  with h5py.File(path, "w") as f:
    for vid, array in videos.items():
      if group:
        f.create_group(vid)[group] = array
      else:
        f[vid] = array
  return str(path)


def test_flat_and_grouped_layouts(tmp_path):
  a = np.arange(12, dtype=np.float64).reshape(3, 4)
  flat = make_file(tmp_path / "flat.hdf5", {"s1-d1.avi": a})
  grouped = make_file(tmp_path / "grouped.hdf5", {"v_x": a}, group="c3d_features")
  with features.FeatureFile(flat) as f:
    np.testing.assert_array_equal(f.read("s1-d1.avi"), a)
    assert f.read("s1-d1.avi").dtype == np.float32 and f.dim == 4
    assert f.read("missing") is None
  with features.FeatureFile(grouped, dataset_name="c3d_features") as f:
    np.testing.assert_array_equal(f.read("v_x"), a)


def test_record_problems():
  assert features.problem(None) == "video missing from features file"
  assert features.problem(np.zeros((0, 4), np.float32)) == "no feature clips"
  assert features.problem(np.array([[1.0, np.nan]], np.float32)) == "non-finite features"
  assert features.problem(np.array([[1.0, np.inf]], np.float32)) == "non-finite features"
  assert features.problem(np.ones((2, 2), np.float32)) is None


def test_inconsistent_dimension_stops(tmp_path):
  path = make_file(tmp_path / "f.hdf5", {"a": np.ones((3, 4)), "b": np.ones((3, 5))})
  with features.FeatureFile(path) as f:
    f.read("a")
    with pytest.raises(FormatError, match=r"f.hdf5: video 'b'.*dimension 5 differs from 4"):
      f.read("b")


def test_wrong_shape_and_layout_stop(tmp_path):
  path = make_file(tmp_path / "f.hdf5", {"a": np.ones(7)})
  with features.FeatureFile(path) as f, pytest.raises(FormatError, match=r"\[clips, dim\]"):
    f.read("a")
  path = make_file(tmp_path / "g.hdf5", {"v_a": np.ones((3, 4))})
  with features.FeatureFile(path, "c3d_features") as f, pytest.raises(
      FormatError, match="v_a/c3d_features"):
    f.read("v_a")


def test_truncated_file(tmp_path):
  path = make_file(tmp_path / "f.hdf5", {f"v{i}": np.ones((50, 64)) for i in range(5)})
  data = open(path, "rb").read()
  (tmp_path / "cut.hdf5").write_bytes(data[: len(data) // 3])
  with pytest.raises(FormatError, match="cut.hdf5.*not a readable HDF5"):
    features.FeatureFile(str(tmp_path / "cut.hdf5"))
  (tmp_path / "text.hdf5").write_text("not hdf5")
  with pytest.raises(FormatError, match="text.hdf5"):
    features.FeatureFile(str(tmp_path / "text.hdf5"))
