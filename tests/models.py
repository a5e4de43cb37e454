"""The tests' models: every registered model's demo config at the tiny and small sizes
(`vmr_jax.registry`, `vmr_jax.configs.default.shrink`), built on random batches, and
fitted to one batch."""

import importlib
import os

import numpy as np

from vmr_jax import registry

# Modules that register models of the tests' own (tests/toy_model.py, loaded as a
# plugin, names itself here); the variable reaches the tests' subprocesses too.
EXTRA_MODELS = "VMR_JAX_TEST_MODELS"
for _module in filter(None, os.environ.get(EXTRA_MODELS, "").split(",")):
  importlib.import_module(_module)
FEATURE_DIM, VOCAB = 12, 40  # the small models' random batches
VARIANTS = registry.variants()  # MODEL and MODEL/READING: what per-model tests run


def tiny_config(variant: str, data_dir, release):
  """`variant`'s tiny config on the tests' `synthetic/tiny` build in `data_dir`, built
  from the release files in `release` (its word vectors and role trees read there)."""
  import os
  config = registry.demo_config(variant, "tiny")
  config.data.data_dir = str(data_dir)
  config.text.glove_file = str(release / os.path.basename(config.text.glove_file))
  if config.data.srl_file:
    config.data.srl_file = str(release / os.path.basename(config.data.srl_file))
  return config


def small_model_config(variant: str):
  """`variant`'s small config: random word vectors and tiny widths."""
  return registry.demo_config(variant, "small")


def pads_clips(config) -> bool:
  """Whether `config.model` takes videos shorter than its grid as padded clips (a
  video-level model that does not ask for stretched videos)."""
  data = registry.for_config(config).data
  return data.get("batch_kind") == "video" and data.get("short_videos") != "stretch"


def small_model(config, batch):
  """(spec, model, variables) of `config.model` on the random vocabulary, initialized
  on `batch` by the trainer's jitted init (`train.init_variables`). The twin, wiring
  and precision tests all call this one program per model, so a worker compiles it
  once and the session's compilation cache serves every later call; flax's eager
  `init` would instead dispatch (and compile) every op of the model one by one."""
  from vmr_jax import train
  spec = registry.for_config(config)
  model = spec.create(config, registry.DataInfo(FEATURE_DIM, [f"w{i}" for i in range(VOCAB)],
                                                None))
  return spec, model, train.init_variables(model, batch, config)


def small_padded_batch(config, seed=0):
  """A random training batch with padding everywhere it can be: an invalid query and
  a padded example (their rows hold garbage), short word masks and, for models that
  allow it, padded clips."""
  from vmr_jax.tools.random_batch import random_batch
  rng = np.random.default_rng(seed)
  batch = random_batch(config, FEATURE_DIM, VOCAB, rng)
  batch["epoch"][:] = [0, 20, 20, 20]  # example 0 still in FVMR's warm-up
  batch["example_valid"][-1] = False
  if "query_valid" in batch:
    batch["query_valid"][1, -1] = False
  if pads_clips(config):
    batch["video_mask"][0, -5:] = False
    batch["video_feats"][0, -5:] = 50.0
    batch["duration"][0] *= 0.7
  return batch


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
  from vmr_jax import evaluate, sharding, train
  run = train.setup(config)
  full = next(run.pipeline.eval_iterator("train", 8))
  batch = {**sharding.numeric(full), "epoch": np.zeros(len(full["video_id"]), np.int32)}
  variables, losses = fit_one_batch(run.model.module, run.state.variables, batch,
                                    run.spec.loss, config, steps, learning_rate, train=True)
  ranked = run.spec.decode(run.model.module.apply(variables, batch), batch, config)
  records = evaluate.prediction_records(full, np.asarray(ranked), 0.5, 5)
  return losses, evaluate.metrics_of_records(records, (1,), (0.5,))["R@1,IoU=0.5"]
