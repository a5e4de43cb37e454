"""Shared fixtures: a tiny synthetic corpus and its built TFDS dataset (once a session)."""

import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One XLA compilation cache for the session: the CLI tests' subprocesses compile the
# same programs again and again (resume, eval, predict runs).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="vmr_jax_xla_"))
# Tiny models: XLA's CPU code optimization costs more time than it saves.
FAST_COMPILE = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

import pytest

from data_pipelines import synthetic_corpus

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_ANNOTATIONS = REPO.parent / "shared" / "data" / "annotations"
TINY_SPEC = synthetic_corpus.CorpusSpec(
    num_videos=(12, 4, 4), min_clips=16, max_clips=40, feature_dim=16, num_concepts=8,
    glove_dim=8)


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


def tiny_cmhn_config(data_dir, release):
  """configs/cmhn_synthetic.py shrunk to the tiny dataset (seconds per run on CPU)."""
  from configs import cmhn_synthetic
  config = cmhn_synthetic.get_config()
  config.data.data_dir = str(data_dir)
  config.data.builder_config = "tiny"
  config.data.num_clips = 16
  config.data.max_queries = 4
  config.data.eval_max_queries = 0  # evaluation chunks like training: Q = 4
  config.data.shuffle_buffer = 32
  config.text.glove_file = str(release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt")
  config.text.head_hidden = 8
  config.cmhn.hidden = 16
  config.cmhn.code_bits = 8
  config.cmhn.max_kernel = 6
  config.train.batch_size = 8
  config.train.num_steps = 12
  config.train.log_every = 4
  config.train.eval_every = 6
  config.train.checkpoint_every = 3
  config.eval.batch_size = 8
  config.eval.top_k = 10
  return config


@pytest.fixture
def cmhn_config(tiny_data_dir, tiny_release):
  return tiny_cmhn_config(tiny_data_dir, tiny_release)


def tiny_hscnet_config(data_dir, release):
  """configs/hscnet_synthetic.py shrunk to the tiny dataset (seconds per run on CPU)."""
  from configs import hscnet_synthetic
  config = hscnet_synthetic.get_config()
  config.data.data_dir = str(data_dir)
  config.data.builder_config = "tiny"
  config.data.num_clips = 16
  config.data.shuffle_buffer = 32
  config.hscnet.max_sentences = 3  # the tiny videos' paragraphs are cut in two
  config.text.glove_file = str(release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt")
  config.hscnet.hidden = 16
  config.hscnet.num_heads = 2
  config.hscnet.mlp_dim = 16
  config.hscnet.video_layers = 1
  config.hscnet.text_layers = 1
  config.train.batch_size = 8
  config.train.num_steps = 12
  config.train.log_every = 4
  config.train.eval_every = 6
  config.train.checkpoint_every = 3
  config.eval.batch_size = 8
  return config


@pytest.fixture
def hscnet_config(tiny_data_dir, tiny_release):
  return tiny_hscnet_config(tiny_data_dir, tiny_release)
