"""The one training loop: any registered model, any dataset, 1..N devices.

`train_and_evaluate(config, workdir)`:
1. builds the input pipeline and the model (`vmr_jax.registry`), initializes the
   parameters (pretrained ones loaded over them) and the optax optimizer;
2. resumes from `workdir/checkpoints` if a checkpoint is there (saying from which):
   the train state and the input position, so the run continues exactly where it
   stopped (an unreadable checkpoint is reported and the next older one taken,
   `vmr_jax.checkpoints`);
3. runs the jit-compiled train step over a `data`-sharded mesh; every step's loss is
   checked, and a NaN/inf stops the run (naming the step and the batch's videos)
   before anything is saved;
4. every `eval_every` steps evaluates `eval.val_split` and keeps the best
   checkpoint by `eval.best_metric`; every `checkpoint_every` steps saves the latest;
5. at the end exports the best checkpoint (`workdir/export`, `vmr_jax.export`) and
   evaluates it on `eval.test_split`.
One run at a time holds `workdir` (`vmr_jax.workdir_lock`); SIGTERM saves the latest
checkpoint at the next step every process agrees on and stops (`vmr_jax.preemption`).
With several processes (`vmr_jax.distributed`) each feeds its rows of every global
batch and process 0 writes the logs, config, export and evaluation files.
Logs: the run's config (`workdir/config.json`, rewritten by each run), TensorBoard
scalars in `workdir` (loss and its terms, learning rate, steps/s, metrics), a line
while the first step compiles, progress bars for training and evaluation, and a
final table of metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Any

from flax import traverse_util
from flax.training import train_state
import jax
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from data_pipelines.data_config import DataConfig
from vmr_jax import (checkpoints, distributed, evaluate, export, precision, preemption,
                     registry, sharding, workdir_lock)
from vmr_jax.metrics import summarize


class TrainState(train_state.TrainState):
  rng: jax.Array  # the step's dropout key is fold_in(rng, step)
  # BatchNorm running statistics ({} for models without BatchNorm): updated by every
  # train step from the global batch (under jit, the mean over a `data`-sharded batch
  # axis is the mean over all devices), used in evaluation, checkpointed with the rest.
  batch_stats: Any

  @property
  def variables(self) -> dict:
    """The variables `module.apply` takes in evaluation."""
    return {"params": self.params,
            **({"batch_stats": self.batch_stats} if self.batch_stats else {})}


def create_optimizer(config: ml_collections.ConfigDict, params,
                     frozen: tuple[tuple[str, ...], ...]):
  """The optimizer of `config.train` and its learning-rate schedule; frozen param
  paths get zero updates."""
  cfg = config.train
  if cfg.schedule == "constant":
    lr = optax.constant_schedule(cfg.learning_rate)
  elif cfg.schedule == "cosine":
    lr = optax.cosine_decay_schedule(cfg.learning_rate, cfg.num_steps)
  elif cfg.schedule == "warmup_cosine":
    lr = optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, cfg.warmup_steps,
                                            cfg.num_steps)
  elif cfg.schedule == "multistep":  # torch's MultiStepLR, in steps
    lr = optax.piecewise_constant_schedule(
        cfg.learning_rate, {int(step): cfg.decay_factor for step in cfg.decay_steps})
  else:
    raise ValueError(f"unknown train.schedule {cfg.schedule!r}")
  optimizers = {
      "adam": lambda: optax.adam(lr),
      "adamw": lambda: optax.adamw(lr, weight_decay=cfg.weight_decay),
      "sgd": lambda: optax.sgd(lr, momentum=0.9),
  }
  if cfg.optimizer not in optimizers:
    raise ValueError(f"unknown train.optimizer {cfg.optimizer!r}; one of {sorted(optimizers)}")
  tx = optimizers[cfg.optimizer]()
  if cfg.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
  flat = traverse_util.flatten_dict(params)
  labels = {path: "frozen" if any(path[:len(f)] == f for f in frozen) else "train"
            for path in flat}
  return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()},
                               traverse_util.unflatten_dict(labels)), lr


def make_train_step(model: registry.Model, spec: registry.ModelSpec, config, lr_fn):
  """(state, batch) -> (state, metrics); pure, to be jit-compiled. The forward pass
  runs in `config.train.compute_dtype` (`vmr_jax.precision`); the params, their
  gradients, the optimizer state and the loss stay float32."""
  dtype = precision.compute_dtype(config)

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      variables = precision.cast_variables({**state.variables, "params": params}, dtype)
      outputs, updates = model.module.apply(variables, precision.cast_batch(batch, dtype),
                                            train=True, rngs={"dropout": rng},
                                            mutable=["batch_stats"])
      loss, terms = spec.loss(precision.to_float32(outputs), batch, config)
      return loss, (terms, updates.get("batch_stats", state.batch_stats))

    (loss, (terms, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads),
               "learning_rate": lr_fn(state.step), **terms}
    return state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics
  return train_step


def init_variables(model: registry.Model, batch, config) -> dict:
  """`{"params", and "batch_stats" if the model has BatchNorm}` from
  `model.module.init` on one batch, pretrained parameters loaded over."""
  variables = dict(jax.jit(lambda r, b: model.module.init(r, b, train=False))(
      jax.random.PRNGKey(config.seed), sharding.numeric(batch)))
  variables["params"] = registry.load_pretrained(variables["params"], model.pretrained)
  return variables


def initial_state(model: registry.Model, variables, config):
  """The initial `TrainState` (optimizer of `config.train`, dropout key from
  `config.seed`) and the learning-rate schedule; the state is a pure function of
  `variables` (so `jax.eval_shape` gives its shapes)."""
  params = variables["params"]
  tx, lr_fn = create_optimizer(config, params, model.frozen)
  state = TrainState.create(apply_fn=model.module.apply, params=params, tx=tx,
                            rng=jax.random.fold_in(jax.random.PRNGKey(config.seed), 1),
                            batch_stats=variables.get("batch_stats", {}))
  return state, lr_fn


def create_train_state(model: registry.Model, variables, config, mesh):
  """`initial_state`, the state replicated over `mesh`."""
  state, lr_fn = initial_state(model, variables, config)
  return jax.device_put(state, sharding.replicated(mesh)), lr_fn


@dataclasses.dataclass
class Setup:
  """What training, evaluation and prediction share."""
  pipeline: Any  # data_pipelines.input_pipeline.Pipeline
  spec: registry.ModelSpec
  model: registry.Model
  mesh: jax.sharding.Mesh
  state: TrainState  # freshly initialized, replicated over the mesh
  lr_fn: Any


def make_pipeline(config: ml_collections.ConfigDict):
  """This process's input pipeline of `config.data`
  (`data_pipelines.input_pipeline.Pipeline`), once the model accepts the data
  options and the dataset has the config's splits."""
  from data_pipelines.input_pipeline import Pipeline  # TensorFlow: only with real data
  precision.compute_dtype(config)  # a bad value fails before the data is read
  spec = registry.for_config(config)
  data_config = DataConfig.from_config(config.data)
  for field, value in spec.data.items():
    allowed = value if isinstance(value, tuple) else (value,)
    if getattr(data_config, field) not in allowed:
      needs = f"={value!r}" if len(allowed) == 1 else f" in {allowed}"
      raise ValueError(f"{config.model} needs config.data.{field}{needs}, "
                       f"the config has {getattr(data_config, field)!r}")
  pipeline = Pipeline(data_config, jax.process_index(), jax.process_count())
  for split in (config.eval.val_split, config.eval.test_split, data_config.train_split):
    pipeline.check_split(split)
  return pipeline


def setup(config: ml_collections.ConfigDict, pipeline=None) -> Setup:
  """The model of `config` initialized on `pipeline` (default: `make_pipeline`'s)."""
  pipeline = pipeline or make_pipeline(config)
  mesh = sharding.make_mesh()
  spec = registry.for_config(config)
  info = registry.DataInfo(pipeline.feature_dim, pipeline.vocab.words,
                           str(pipeline.builder.data_path))
  model = spec.create(config, info)
  example = next(pipeline.eval_iterator(config.eval.val_split,
                                        sharding.check_batch_size(config.eval.batch_size, mesh)))
  state, lr_fn = create_train_state(model, init_variables(model, example, config), config,
                                    mesh)
  return Setup(pipeline, spec, model, mesh, state, lr_fn)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains, then evaluates the best checkpoint on the test split; returns its metrics.
  Holds `workdir`'s lock throughout (`vmr_jax.workdir_lock`); on SIGTERM saves and
  raises `preemption.Preempted` (`vmr_jax.preemption`)."""
  with contextlib.ExitStack() as stack:
    _hold_workdir(workdir, stack)
    return _train_and_evaluate(config, workdir, stack)


def _train_and_evaluate(config, workdir: str, stack: contextlib.ExitStack):
  run = setup(config)
  pipeline, spec, model, mesh, state = run.pipeline, run.spec, run.model, run.mesh, run.state
  num_steps = config.train.num_steps
  if distributed.is_main():
    os.makedirs(workdir, exist_ok=True)
    export.write_config(os.path.join(workdir, "config.json"), config)
  sharding.check_batch_size(config.train.batch_size, mesh)
  ckpt = checkpoints.Checkpoints(workdir, config.train.keep_checkpoints,
                                 config.eval.best_metric)
  stack.callback(ckpt.close)
  data_state = None
  if ckpt.latest_step() is not None:
    state, data_state, step = ckpt.restore_latest(state, set_aside=True)
    _say(f"resuming from step {step} of {num_steps} (checkpoint {ckpt.latest_path(step)})")
  train_iter = pipeline.train_iterator(config.train.batch_size, config.seed, data_state)

  replicated, data = sharding.replicated(mesh), sharding.data_sharded(mesh)
  train_step = jax.jit(make_train_step(model, spec, config, run.lr_fn),
                       in_shardings=(replicated, data), out_shardings=(replicated, replicated),
                       donate_argnums=0)
  evaluator = evaluate.Evaluator(model, spec, config, pipeline, mesh)
  writer = _summary_writer(workdir)
  if writer is not None:
    stack.callback(writer.close)
  watcher = stack.enter_context(preemption.Watcher())
  start_step = int(state.step)
  progress = tqdm(range(start_step, num_steps), initial=start_step, total=num_steps,
                  desc="train", disable=not distributed.is_main())
  last_time, last_step = time.perf_counter(), start_step
  if start_step < num_steps:
    _say("compiling the train step (the first step waits for it)")
  for step in progress:
    batch = next(train_iter)
    state, metrics = train_step(state, sharding.host_to_global(batch, mesh))
    loss = float(metrics["loss"])
    if not np.isfinite(loss):
      videos = sorted({v.decode() for v in batch["video_id"]})
      raise FloatingPointError(f"loss is {loss} at step {step + 1}; batch videos: {videos}"
                               "; nothing was saved for this step")
    done = step + 1
    if done % config.train.log_every == 0 or done == num_steps:
      now = time.perf_counter()
      scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
      scalars["steps_per_second"] = (done - last_step) / (now - last_time)
      last_time, last_step = now, done
      _write(writer, "train", scalars, done)
      progress.set_postfix(loss=f"{loss:.4g}")
    if done % config.train.eval_every == 0 or done == num_steps:
      result = evaluator.run(state.variables, config.eval.val_split)
      _write(writer, config.eval.val_split, result, done)
      best = ckpt.save_if_best(done, state, result)
      _say(f"step {done} {config.eval.val_split}: {summarize(result)}"
           + (" (best)" if best else ""))
    preempted = watcher.reached(done)
    if done % config.train.checkpoint_every == 0 or done == num_steps or preempted:
      ckpt.save_latest(done, state, train_iter.state)
    if preempted:
      progress.close()
      raise preemption.Preempted(done, num_steps, ckpt.latest_path(done))

  best_state, best_step = ckpt.restore_best(state)
  export.write(os.path.join(workdir, "export"), config, best_state.variables,
               pipeline.vocab.words, pipeline.feature_dim, best_step)
  result = evaluator.run(best_state.variables, config.eval.test_split, workdir=workdir)
  _write(writer, config.eval.test_split, result, best_step)
  _say(evaluate.table(result, f"{config.eval.test_split} (best checkpoint, step {best_step})"))
  return result


def _hold_workdir(workdir: str, stack: contextlib.ExitStack) -> None:
  """Process 0 takes the workdir's lock; every process stops if it is taken."""
  error = None
  if distributed.is_main():
    try:
      stack.enter_context(workdir_lock.hold(workdir))
    except workdir_lock.WorkdirInUseError as e:
      error = str(e)
  error = distributed.gather_json(error)[0]
  if error:
    raise workdir_lock.WorkdirInUseError(error)


def _say(line: str) -> None:
  """A line of the run's output (process 0), between progress bars."""
  if distributed.is_main():
    tqdm.write(line)


def _summary_writer(workdir: str):
  if not distributed.is_main():
    return None
  from tensorboardX import SummaryWriter
  return SummaryWriter(workdir)


def _write(writer, prefix: str, scalars: dict[str, Any], step: int) -> None:
  if writer is None:
    return
  for name, value in scalars.items():
    if name != "num_queries":
      writer.add_scalar(f"{prefix}/{name}", float(value), step)
  writer.flush()
