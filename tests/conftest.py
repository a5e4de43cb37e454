"""The session's XLA settings and the shared fixtures: the tiny synthetic corpus and
its built TFDS dataset (once a session), real annotation files, each model's tiny
config. Helpers live in tests/models.py (the models) and tests/release_files.py."""

import json
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One XLA compilation cache for the session: the CLI tests' subprocesses compile the
# same programs again and again (resume, eval, predict runs).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="vmr_jax_xla_"))
# Tiny models: XLA's CPU code optimization costs more time than it saves, and its
# MLIR fusion emitters compile a small model's gradient ~2.5x slower than the
# classic ones (HSCNet's small train step: 15 s -> 6 s; jaxlib 0.10.2).
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

import pytest

from data_pipelines import synthetic_corpus
from tests.models import tiny_config
from tests.release_files import VIDEOS_PER_SPLIT, random_features, take

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_ANNOTATIONS = REPO.parent / "shared" / "data" / "annotations"
TINY_SPEC = synthetic_corpus.CorpusSpec(
    num_videos=(12, 4, 4), min_clips=16, max_clips=40, feature_dim=16, num_concepts=8,
    glove_dim=8)


def pytest_runtest_setup(item):
  """Fails a grouped test where `--dist loadgroup` dropped its `xdist_group` mark (the
  group is a suffix of the node id; pytest 9.2 with pytest-xdist 3.8 loses it), which
  would silently make each worker train the shared tiny models again."""
  if (getattr(item.config.option, "loadgroup", False)
      and item.get_closest_marker("xdist_group") and "@" not in item.nodeid):
    pytest.fail("--dist loadgroup ignored this test's xdist_group mark: see the pytest "
                "pin in pyproject.toml", pytrace=False)


@pytest.fixture(scope="session")
def real_annotations() -> pathlib.Path:
  """The real release annotation files in ../shared (skips where they are absent)."""
  if not SHARED_ANNOTATIONS.is_dir():
    pytest.skip(f"real annotations not found at {SHARED_ANNOTATIONS}")
  return SHARED_ANNOTATIONS


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory) -> pathlib.Path:
  """The tiny synthetic corpus in release formats (the same as the `tiny` config)."""
  directory = tmp_path_factory.mktemp("release")
  synthetic_corpus.write_corpus(str(directory), TINY_SPEC)
  return directory


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, tiny_release) -> pathlib.Path:
  """A TFDS data dir with `synthetic/tiny` built from `tiny_release`."""
  from data_pipelines import build
  data_dir = tmp_path_factory.mktemp("tfds")
  build.build("synthetic", str(data_dir), manual_dir=str(tiny_release), config="tiny")
  return data_dir


@pytest.fixture
def tacos_dir(tmp_path, real_annotations):
  """Three real videos per split, as TACoS json + tall_c3d_features.hdf5 (dim 32)."""
  import h5py
  import numpy as np
  rng = np.random.default_rng(0)
  durations = {}
  for split in ("train", "val", "test"):
    data = take(json.loads((real_annotations / "tacos" / f"{split}.json").read_text()),
                VIDEOS_PER_SPLIT)
    (tmp_path / f"{split}.json").write_text(json.dumps(data))
    durations.update({v: e["num_frames"] / e["fps"] / 20 for v, e in data.items()})
  with h5py.File(tmp_path / "tall_c3d_features.hdf5", "w") as f:
    for vid, feats in random_features(durations, 32, rng).items():
      f[vid] = feats
  return tmp_path


@pytest.fixture
def cmhn_config(tiny_data_dir, tiny_release):
  """CMHN's paper reading at the tiny size."""
  return tiny_config("cmhn/paper", tiny_data_dir, tiny_release)


@pytest.fixture
def hscnet_config(tiny_data_dir, tiny_release):
  return tiny_config("hscnet", tiny_data_dir, tiny_release)


@pytest.fixture
def clear_config(tiny_data_dir, tiny_release):
  """CLEAR's paper reading at the tiny size."""
  return tiny_config("clear/paper", tiny_data_dir, tiny_release)


@pytest.fixture
def fvmr_config(tiny_data_dir, tiny_release):
  return tiny_config("fvmr", tiny_data_dir, tiny_release)


@pytest.fixture
def fian_config(tiny_data_dir, tiny_release):
  return tiny_config("fian", tiny_data_dir, tiny_release)
