"""A model's train step and evaluation timed on a random batch, in JAX and in its
PyTorch twin: what `bench --config` prints and `bench --suite=device` records. A
module of its own, without flags, so that both (and tests) can import it.

`prepare` builds the model of a config on `random_batch` of its shapes, with the text
encoder the twins have (GloVe-sized random vectors + a BiGRU head where the config has
BERT, else the config's own GloVe encoder; both trainable). The JAX train step is the
trainer's (`train.make_train_step`, data parallel over all local devices, the state
donated), compiled ahead of time so that XLA's cost and memory analyses of the very
program timed come with it (`costs.compiled_costs`). The twin (`vmr_jax.tools.twins`)
starts from the same weights and takes eager Adam steps.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import jax
import numpy as np

from vmr_jax import evaluate, registry, sharding, train
from vmr_jax.tools import costs
from vmr_jax.tools.random_batch import random_batch


@dataclasses.dataclass
class Prepared:
  """A built model, its random batch (host and device copies) and initial variables."""
  config: Any
  spec: registry.ModelSpec
  model: registry.Model
  batch: dict[str, np.ndarray]
  device_batch: dict[str, jax.Array]
  mesh: jax.sharding.Mesh
  variables: dict
  feature_dim: int
  vocab: int

  @property
  def queries(self) -> int:
    """The batch's real queries (what queries/s counts)."""
    return int(evaluate.query_validity(self.batch).sum())


@dataclasses.dataclass
class TrainStep:
  """The compiled JAX train step of a `Prepared` and the state it takes."""
  compiled: jax.stages.Compiled
  state: Any
  compile_seconds: float  # tracing and compiling
  costs: costs.StepCosts  # XLA's analyses of the compiled step


def use_twin_text(config) -> None:
  """Sets `config.text` to the encoder the twins have (module docstring)."""
  config.unlock()
  if config.text.encoder == "bert":  # no BERT on the PyTorch side
    config.text.head = "bigru"
  config.text.encoder, config.text.vectors, config.text.trainable = "glove", "random", True


def prepare(config, feature_dim: int, vocab: int) -> Prepared:
  """`config`'s model (`use_twin_text`: `config` is changed) initialized on a random
  batch of its shapes."""
  use_twin_text(config)
  spec = registry.for_config(config)
  model = spec.create(config, registry.DataInfo(feature_dim, [f"w{i}" for i in range(vocab)],
                                                None))
  batch = random_batch(config, feature_dim, vocab, np.random.default_rng(0))
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.train.batch_size, mesh)
  return Prepared(config, spec, model, batch, sharding.host_to_global(batch, mesh), mesh,
                  train.init_variables(model, batch, config), feature_dim, vocab)


def timed(run: Callable[[], Any], steps: int, warmup: int = 1,
          max_seconds: float = math.inf) -> tuple[float, int]:
  """(mean seconds of a call of `run`, calls timed): `warmup` untimed calls, then
  `steps` calls, fewer (at least one) where the last warm-up call says `steps` would
  take over `max_seconds`. Waits for the last call's JAX arrays, if any."""
  for _ in range(warmup):
    start = time.perf_counter()
    jax.block_until_ready(run())
    fit = max_seconds / (time.perf_counter() - start)
    steps = steps if fit >= steps else max(1, int(fit))
  start = time.perf_counter()
  for _ in range(steps):
    out = run()
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / steps, steps


def compile_train_step(prepared: Prepared, name: str) -> TrainStep:
  """The JAX train step of `prepared`, compiled, with a state made from its variables
  (which the donated state may take over); `name` names the costs' row."""
  p = prepared
  start = time.perf_counter()
  state, lr_fn = train.create_train_state(p.model, p.variables, p.config, p.mesh)
  replicated, data = sharding.replicated(p.mesh), sharding.data_sharded(p.mesh)
  traced = jax.jit(train.make_train_step(p.model, p.spec, p.config, lr_fn),
                   in_shardings=(replicated, data), out_shardings=(replicated, replicated),
                   donate_argnums=0).trace(state, p.device_batch)
  compiled = traced.lower().compile()
  seconds = time.perf_counter() - start
  return TrainStep(compiled, state, seconds,
                   costs.compiled_costs(name, p.config, state.params, traced, compiled, seconds))


def time_train_step(step: TrainStep, prepared: Prepared, steps: int,
                    max_seconds: float = math.inf) -> tuple[float, int]:
  """(seconds a step, steps timed) of `steps` steps on `prepared`'s batch after a first
  one (`timed`); `step.state` is then the trained state."""
  def run():
    step.state, metrics = step.compiled(step.state, prepared.device_batch)
    return metrics
  return timed(run, steps, max_seconds=max_seconds)


def eval_queries_per_second(prepared: Prepared, variables, steps: int,
                            max_seconds: float = math.inf) -> float:
  """Queries/s of the evaluation forward + decode (`evaluate.make_predict_fn`) of
  `prepared.config` as it is now, with `variables`, after a compiling call."""
  p = prepared
  predict = jax.jit(evaluate.make_predict_fn(p.model, p.spec, p.config),
                    in_shardings=(sharding.replicated(p.mesh), sharding.data_sharded(p.mesh)),
                    out_shardings=sharding.data_sharded(p.mesh))
  seconds, _ = timed(lambda: predict(variables, p.device_batch), steps,
                     max_seconds=max_seconds)
  return p.queries / seconds


def torch_step(prepared: Prepared, device: str = "cpu"):
  """(one Adam step of the PyTorch twin holding `prepared.variables`, on `device`,
  synchronized there; "torch VERSION (N threads | device name)"), or None where
  `config.model` has no twin. Call it before `time_train_step` donates the variables."""
  from vmr_jax.tools import twins
  p = prepared
  if not twins.has(p.config.model):
    return None
  import torch
  from vmr_jax.tools.twins import convert
  if device != "cpu":  # the tensors the twins make as they run (a hook on every call)
    torch.set_default_device(device)
  torch_model = twins.create(p.config, p.feature_dim, p.vocab)
  convert.load_flax(torch_model, p.variables)  # the same function, the same weights
  optimizer = torch.optim.Adam(torch_model.parameters(), lr=p.config.train.learning_rate)
  torch_batch = {k: v.to(device) for k, v in twins.to_torch(p.batch).items()}
  torch_model.train()
  cuda = device.startswith("cuda")

  def step():
    optimizer.zero_grad()
    torch_model.loss(torch_model(torch_batch), torch_batch)[0].backward()
    optimizer.step()
    if cuda:
      torch.cuda.synchronize()
  where = (torch.cuda.get_device_name(device) if cuda
           else f"{torch.get_num_threads()} threads")
  return step, f"torch {torch.__version__} ({where})"
