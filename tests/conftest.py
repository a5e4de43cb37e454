"""Shared fixtures: a tiny synthetic corpus and its built TFDS dataset (once a session)."""

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


VIDEOS_PER_SPLIT = 3


def take(d: dict, n: int) -> dict:
  return dict(list(d.items())[:n])


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


def write_charades_release(directory, annotations, lines_per_split: int,
                           feature_file: str, dim: int, seed: int = 0) -> None:
  """Charades-STA release files in `directory`: the first sentences of each split of
  the real `charades_sta_{split}.txt`, their videos' rows of `Charades_v1_{split}.csv`,
  and `feature_file` (HDF5, `f[vid]` -> [clips, dim], about one clip per second)."""
  import csv
  import h5py
  import numpy as np
  rng = np.random.default_rng(seed)
  durations = {}
  for split in ("train", "test"):
    lines = (annotations / "charades_sta" / f"charades_sta_{split}.txt").read_text(
        ).splitlines()[:lines_per_split]
    (directory / f"charades_sta_{split}.txt").write_text("\n".join(lines) + "\n")
    videos = {line.split()[0] for line in lines}
    with open(annotations / "charades_sta" / f"Charades_v1_{split}.csv") as src, \
        open(directory / f"Charades_v1_{split}.csv", "w", newline="") as dst:
      reader = csv.DictReader(src)
      writer = csv.DictWriter(dst, reader.fieldnames)
      writer.writeheader()
      for row in reader:
        if row["id"] in videos:
          writer.writerow(row)
          durations[row["id"]] = float(row["length"])
  with h5py.File(directory / feature_file, "w") as f:
    for video, feats in random_features(durations, dim, rng).items():
      f[video] = feats


def random_features(durations: dict, dim: int, rng) -> dict:
  """`{video: duration}` -> `{video: [clips, dim]}`, d/2 to d + 2 clips (d seconds)."""
  import numpy as np
  return {video: rng.normal(size=(int(rng.integers(max(2, int(d / 2)), int(d) + 3)), dim)
                            ).astype(np.float32) for video, d in durations.items()}


def shrink_to_tiny(config, data_dir, release):
  """A synthetic demo config on the tiny dataset, with a 12-step schedule (seconds per
  run on CPU)."""
  config.data.data_dir = str(data_dir)
  config.data.builder_config = "tiny"
  config.data.num_clips = 16
  config.data.shuffle_buffer = 32
  config.text.glove_file = str(release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt")
  config.train.batch_size = 8
  config.train.num_steps = 12
  config.train.log_every = 4
  config.train.eval_every = 6
  config.train.checkpoint_every = 3
  config.eval.batch_size = 8
  return config


def changed_fields(config, base) -> dict:
  """The fields of `config` whose values differ from `base`'s, by dotted path
  (`{"train.num_steps": 12, ...}`): a tiny config as overrides of its config file."""
  def flat(node, prefix=""):
    out = {}
    for key, value in node.items():
      if hasattr(value, "items"):
        out.update(flat(value, f"{prefix}{key}."))
      else:
        out[prefix + key] = value
    return out
  old = flat(base)
  return {path: value for path, value in flat(config).items() if old.get(path) != value}


def tiny_cmhn_config(data_dir, release, *reading):
  """configs/cmhn_synthetic.py (its default reading, the released code's, or
  `reading`) shrunk to the tiny dataset."""
  from vmr_jax.configs import cmhn_synthetic
  config = shrink_to_tiny(cmhn_synthetic.get_config(*reading), data_dir, release)
  config.data.max_queries = 4
  config.data.eval_max_queries = 0  # evaluation chunks like training: Q = 4
  config.text.head_hidden = 8
  config.cmhn.hidden = 16
  config.cmhn.code_bits = 8
  config.cmhn.kernels = (1, 2, 3, 4, 6)
  config.cmhn.strides = (1, 1, 1, 2, 2)
  config.cmhn.tcn_channels = (16, 16)  # the released reading's residual TCN
  config.cmhn.query_hidden = (16, 8)
  config.eval.top_k = 10
  return config


def tiny_cmhn_paper_config(data_dir, release):
  """configs/cmhn_synthetic.py:paper shrunk to the tiny dataset."""
  return tiny_cmhn_config(data_dir, release, "paper")


@pytest.fixture
def cmhn_config(tiny_data_dir, tiny_release):
  return tiny_cmhn_paper_config(tiny_data_dir, tiny_release)


def tiny_hscnet_config(data_dir, release):
  """configs/hscnet_synthetic.py shrunk to the tiny dataset."""
  from vmr_jax.configs import hscnet_synthetic
  config = shrink_to_tiny(hscnet_synthetic.get_config(), data_dir, release)
  config.hscnet.max_sentences = 3  # the tiny videos' paragraphs are cut in two
  config.hscnet.hidden = 16
  config.hscnet.num_heads = 2
  config.hscnet.mlp_dim = 16
  config.hscnet.video_layers = 1
  config.hscnet.text_layers = 1
  return config


@pytest.fixture
def hscnet_config(tiny_data_dir, tiny_release):
  return tiny_hscnet_config(tiny_data_dir, tiny_release)


def tiny_clear_paper_config(data_dir, release):
  """configs/clear_synthetic.py:paper shrunk to the tiny dataset."""
  from vmr_jax.configs import clear_synthetic
  config = shrink_to_tiny(clear_synthetic.get_config("paper"), data_dir, release)
  config.data.max_queries = 4
  config.data.eval_max_queries = 0
  config.text.head_hidden = 8
  config.clear.hidden = 16
  config.clear.dim = 16
  config.clear.fine_hidden = 16
  config.eval.top_k = 10
  return config


def tiny_clear_config(data_dir, release):
  """configs/clear_synthetic.py (its default reading, the released code's) shrunk to
  the tiny dataset: 16 clips pooled to an 8-clip map."""
  from vmr_jax.configs import clear_synthetic
  config = shrink_to_tiny(clear_synthetic.get_config("released"), data_dir, release)
  config.clear.update(
      frame_dim=8, scale_layers=(4, 2), query_hidden=8, query_layers=2,
      predictor_hidden=8, predictor_layers=2, tcn_channels=(8,), coarse_dim=8,
      sentence_hidden=8, sentence_layers=2, sentence_fc=8, coarse_kernels=(1, 2, 4, 8),
      coarse_strides=(1, 1, 2, 4), rule_anchor=3)
  config.train.decay_steps = (8,)
  config.eval.top_k = 10
  return config


@pytest.fixture
def clear_config(tiny_data_dir, tiny_release):
  return tiny_clear_paper_config(tiny_data_dir, tiny_release)


def tiny_fvmr_config(data_dir, release):
  """configs/fvmr_synthetic.py shrunk to the tiny dataset (its 16-clip map); the
  distillation warm-up ends after 2 of the 12 steps' ~6 epochs."""
  from vmr_jax.configs import fvmr_synthetic
  config = shrink_to_tiny(fvmr_synthetic.get_config(), data_dir, release)
  config.data.srl_file = str(release / "srl.jsonl")
  config.data.max_queries = 4
  config.data.eval_max_queries = 0
  config.text.head_hidden = 8
  for field in ("video_dim", "dim", "mlp_hidden"):
    config.fvmr[field] = 8
  config.fvmr.node_hidden = 4
  config.fvmr.fuse_hidden = 4
  config.fvmr.distill_warmup_epochs = 2
  config.eval.top_k = 10
  return config


@pytest.fixture
def fvmr_config(tiny_data_dir, tiny_release):
  return tiny_fvmr_config(tiny_data_dir, tiny_release)


def tiny_fian_config(data_dir, release):
  """configs/fian_synthetic.py shrunk to the tiny dataset (16 clips)."""
  from vmr_jax.configs import fian_synthetic
  config = shrink_to_tiny(fian_synthetic.get_config(), data_dir, release)
  config.text.head_hidden = 4
  config.fian.hidden = 8
  config.fian.num_heads = 2
  config.fian.mlp_dim = 8
  config.eval.top_k = 10
  return config


@pytest.fixture
def fian_config(tiny_data_dir, tiny_release):
  return tiny_fian_config(tiny_data_dir, tiny_release)


def fit_one_batch(module, variables, batch, loss, config, steps: int,
                  learning_rate: float, train: bool = False):
  """Adam on one batch (dropout key i at step i; BatchNorm statistics, if any, updated
  in training mode): the fitted variables and every step's loss."""
  import jax
  import optax
  tx = optax.adam(learning_rate)

  @jax.jit
  def step(variables, opt_state, rng):
    def loss_fn(params):
      outputs, updates = module.apply({**variables, "params": params}, batch, train=train,
                                      rngs={"dropout": rng}, mutable=["batch_stats"])
      return loss(outputs, batch, config)[0], updates
    (value, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
    param_updates, opt_state = tx.update(grads, opt_state)
    params = optax.apply_updates(variables["params"], param_updates)
    return {**variables, **updates, "params": params}, opt_state, value

  opt_state, losses = tx.init(variables["params"]), []
  for i in range(steps):
    variables, opt_state, value = step(variables, opt_state, jax.random.PRNGKey(i))
    losses.append(float(value))
  return variables, losses


def overfit_one_batch(config, steps: int, learning_rate: float):
  """`fit_one_batch` of `config.model` on the first 8 training videos of its dataset
  (as from epoch 0): (every step's loss, R@1,IoU=0.5 of the fitted model on those
  videos)."""
  import numpy as np
  from vmr_jax import evaluate, sharding, train
  run = train.setup(config)
  full = next(run.pipeline.eval_iterator("train", 8))
  batch = {**sharding.numeric(full), "epoch": np.zeros(len(full["video_id"]), np.int32)}
  variables, losses = fit_one_batch(run.model.module, run.state.variables, batch,
                                    run.spec.loss, config, steps, learning_rate, train=True)
  ranked = run.spec.decode(run.model.module.apply(variables, batch), batch, config)
  records = evaluate.prediction_records(full, np.asarray(ranked), 0.5, 5)
  return losses, evaluate.metrics_of_records(records, (1,), (0.5,))["R@1,IoU=0.5"]


FEATURE_DIM, VOCAB = 12, 40
# Small configs of every model on random batches (the twin and wiring tests).
SHRINK = {  # small widths per model (or MODEL/READING); dropout off (the twins' randomness differs)
    "cmhn": {"cmhn.hidden": 16, "cmhn.code_bits": 8, "cmhn.kernels": (1, 2, 3, 5, 8),
             "cmhn.strides": (1, 1, 2, 2, 3), "cmhn.tcn_channels": (12, 16),
             "cmhn.query_hidden": (10, 8), "text.head_hidden": 6, "data.num_clips": 16},
    "clear/paper": {"clear.hidden": 16, "clear.dim": 8, "clear.fine_hidden": 8,
                    "text.head_hidden": 6, "data.num_clips": 12},
    # 32 clips pooled to a 16-clip map of 2D-TAN pooling counts (7, 4), 24 anchors, 85
    # window positions
    "clear/released": {
        "clear.frame_dim": 8, "clear.query_hidden": 6, "clear.predictor_hidden": 8,
        "clear.predictor_layers": 2, "clear.tcn_channels": (12, 8), "clear.coarse_dim": 8,
        "clear.sentence_hidden": 6, "clear.sentence_fc": 8, "clear.query_layers": 2,
        "clear.sentence_layers": 2, "clear.dropout": 0.0, "clear.coarse_kernels": (1, 2, 4, 8),
        "clear.coarse_strides": (1, 1, 2, 4), "clear.rule_anchor": 3,
        "clear.scale_layers": (8, 4), "data.num_clips": 32},
    "fvmr": {"fvmr.video_dim": 8, "fvmr.dim": 8, "fvmr.mlp_hidden": 8, "fvmr.fuse_hidden": 4,
             "fvmr.node_hidden": 4, "text.head_hidden": 5, "text.head_layers": 2,
             "data.num_clips": 32, "fvmr.scale_layers": (16, 8), "data.max_queries": 3},
    "hscnet": {"hscnet.hidden": 16, "hscnet.num_heads": 2, "hscnet.mlp_dim": 12,
               "hscnet.video_layers": 1, "hscnet.text_layers": 1, "hscnet.dropout": 0.0,
               "hscnet.max_sentences": 4, "data.max_words": 7, "data.num_clips": 16},
    "fian": {"fian.hidden": 8, "fian.num_heads": 2, "fian.mlp_dim": 8, "text.head_hidden": 4,
             "fian.windows": (2, 3, 4, 6), "data.num_clips": 16, "data.max_words": 7},
}
PADDED_CLIPS = ("cmhn", "hscnet")  # models whose videos may be shorter than the grid


def small_model_config(name: str):
  """`name` = MODEL[/READING]: configs/MODEL_synthetic.py (`get_config(READING)`, its
  default reading without one) with random word vectors and tiny widths."""
  import importlib
  model, _, reading = name.partition("/")
  module = importlib.import_module(f"vmr_jax.configs.{model}_synthetic")
  config = module.get_config(reading) if reading else module.get_config()
  config.text.vectors, config.text.glove_dim = "random", 6
  config.train.batch_size = 4
  config.eval.top_k = 6
  reading = config[model].get("reading", "paper")
  for field, value in SHRINK.get(f"{model}/{reading}", SHRINK.get(model, {})).items():
    section, name = field.split(".")
    config[section][name] = value
  return config


def small_model(config, batch):
  """(spec, model, variables) of `config.model` on the random vocabulary, initialized
  on `batch` by the trainer's jitted init (`train.init_variables`). The twin, wiring
  and precision tests all call this one program per model, so a worker compiles it
  once and the session's compilation cache serves every later call; flax's eager
  `init` would instead dispatch (and compile) every op of the model one by one."""
  from vmr_jax import registry, train
  spec = registry.for_config(config)
  model = spec.create(config, registry.DataInfo(FEATURE_DIM, [f"w{i}" for i in range(VOCAB)],
                                                None))
  return spec, model, train.init_variables(model, batch, config)


def small_padded_batch(config, seed=0):
  """A random training batch with padding everywhere it can be: an invalid query and
  a padded example (their rows hold garbage), short word masks and, for models that
  allow it, padded clips."""
  import numpy as np
  from vmr_jax.tools.random_batch import random_batch
  rng = np.random.default_rng(seed)
  batch = random_batch(config, FEATURE_DIM, VOCAB, rng)
  batch["epoch"][:] = [0, 20, 20, 20]  # example 0 still in FVMR's warm-up
  batch["example_valid"][-1] = False
  if "query_valid" in batch:
    batch["query_valid"][1, -1] = False
  if config.model in PADDED_CLIPS:
    batch["video_mask"][0, -5:] = False
    batch["video_feats"][0, -5:] = 50.0
    batch["duration"][0] *= 0.7
  return batch
