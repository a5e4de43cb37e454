"""What each paper config needs: the parameters, FLOPs and peak device memory of its
train step at the paper's batch, in float32 and bfloat16, from XLA's analyses of the
compiled step; no data and no weights are read (`python -m vmr_jax.tools.bench --memory`).

Shapes: `random_batch` of the config (`train.batch_size` videos or pairs, its clips,
queries and words) with the dataset's clip feature size and word vocabulary
(`DATASETS`). The text encoder is the config's architecture with random weights
(`text.vectors = "random"`): GloVe-sized 300-d vectors (frozen, as the real table),
and for BERT configs a randomly initialized BERT-base (`bert.BertConfig()`, 110M
parameters, fine-tuned as the configs say). The step is `train.make_train_step`
(Adam state included, the state donated as the trainer donates it), traced with
`jax.eval_shape`d arguments and compiled for one device of the default backend.

- parameters: every leaf of the params tree (frozen ones included).
- XLA GFLOPs: `compiled.cost_analysis()["flops"]`; XLA counts a loop's body once,
  so the recurrent layers' time steps (lax.scan) count as one step.
- dot GFLOPs: 2 x the multiply-adds of every matrix product and convolution of the
  step's jaxpr (`dot_flops`), each scan body counted once per iteration: the work
  that accelerators' peak FLOP rates measure. The step-time estimates use it.
- peak memory: arguments + outputs + temporaries - aliased (donated) buffers of
  `compiled.memory_analysis()`, the backend's own buffer assignment. Compiled here
  for the CPU, whose fusion and layout decisions differ from a GPU's or TPU's: read
  it as an estimate, not as a measurement on those devices.
"""

from __future__ import annotations

import dataclasses
import importlib
import time

import jax
import numpy as np

from vmr_jax import config_files, registry, train
from vmr_jax.tools.random_batch import random_batch

# Clip feature size and word vocabulary (words of the train split's sentences,
# `data_pipelines.words.split_words`) of the public releases the builders read.
DATASETS = {
    "tacos": (4096, 1499),  # C3D, tall_c3d_features.hdf5
    "activitynet_captions": (500, 10688),  # C3D reduced by PCA, sub_activitynet_v1-3.c3d
    "charades_sta/i3d": (1024, 1109),
    "charades_sta/c3d": (4096, 1109),
    "charades_sta/vgg": (4096, 1109),
}
PAPER_SUFFIXES = ("_tacos.py", "_activitynet.py", "_charades.py")
GIB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Accelerator:
  name: str
  float32_tflops: float  # peak of float32 matrix products
  bfloat16_tflops: float  # peak of bfloat16 ones (the float32 peak where not native)


# Dense peaks of the vendors' data sheets. At JAX's default matmul precision float32
# products run as TF32 on an A100 and as one bfloat16 pass on a TPU (docs.jax.dev,
# "Matmul precision"); V100 and T4 have no bfloat16 matrix units, so bfloat16 gets
# their float32 peak.
ACCELERATORS = (
    Accelerator("V100", 15.7, 15.7),
    Accelerator("T4", 8.1, 8.1),
    Accelerator("A100", 156.0, 312.0),
    Accelerator("TPU v2 core", 22.5, 22.5),  # a chip: 2 cores, 45 TFLOPS
)
# Device memory the table checks the peak against, GiB: a "16 GB" GPU (a T4 has 15
# GiB, a V100 16; JAX takes 75% of it unless XLA_PYTHON_CLIENT_MEM_FRACTION says
# more), one TPU v2 core's HBM (16 GiB per chip, 2 cores).
MEMORY_GIB = {"16 GB GPU": 15, "TPU v2 core": 8}


@dataclasses.dataclass(frozen=True)
class StepCosts:
  config: str
  compute_dtype: str
  batch: str  # e.g. "8 videos x 16 queries"
  parameters: int
  xla_flops: float
  dot_flops: float
  argument_bytes: int
  output_bytes: int
  temp_bytes: int
  alias_bytes: int
  compile_seconds: float  # tracing and compiling

  @property
  def peak_bytes(self) -> int:
    return self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes

  def fits(self, gib: float) -> bool:
    return self.peak_bytes <= gib * GIB

  def step_seconds(self, accelerator: Accelerator, fraction: float) -> float:
    """The dot FLOPs at `fraction` of the accelerator's peak for the compute dtype."""
    peak = (accelerator.bfloat16_tflops if self.compute_dtype == "bfloat16"
            else accelerator.float32_tflops)
    return self.dot_flops / (fraction * peak * 1e12)


def paper_configs() -> list[str]:
  """The installed paper configs' names (`*_tacos`, `*_activitynet`, `*_charades`)."""
  return [name[:-3] for name in config_files.available() if name.endswith(PAPER_SUFFIXES)]


def dataset_sizes(config) -> tuple[int, int]:
  """(clip feature size, word vocabulary) of `config.data`'s dataset."""
  key = config.data.name
  if config.data.builder_config:
    key += f"/{config.data.builder_config}"
  if key not in DATASETS:
    raise ValueError(f"no feature size known for dataset {key!r}; one of {sorted(DATASETS)}")
  return DATASETS[key]


def dot_flops(jaxpr) -> float:
  """2 x multiply-adds of every `dot_general` and `conv_general_dilated` of a jaxpr
  (`jax.extend.core.Jaxpr`), nested jaxprs included: a scan's body `length` times, the
  costliest branch of a `cond`, a `while` body once (its trip count is not static)."""
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    out = np.prod(eqn.outvars[0].aval.shape, dtype=np.float64) if eqn.outvars else 0.0
    if name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += 2.0 * out * np.prod([lhs[i] for i in contract], dtype=np.float64)
    elif name == "conv_general_dilated":
      rhs = eqn.invars[1].aval.shape  # per output: kernel window x input features
      out_features = rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
      total += 2.0 * out * np.prod(rhs, dtype=np.float64) / out_features
    inner = [dot_flops(sub) for sub in jax.extend.core.jaxprs_in_params(eqn.params)]
    if name == "cond":
      total += max(inner, default=0.0)
    else:
      total += eqn.params.get("length", 1) * sum(inner) if name == "scan" else sum(inner)
  return total


def describe_batch(config) -> str:
  size = config.train.batch_size
  if config.data.batch_kind == "query":
    return f"{size} pair{'s' * (size != 1)}"
  return f"{size} video{'s' * (size != 1)} x {config.data.max_queries} queries"


def load(name: str):
  """The config of `configs/<name>.py`; `NAME:ARG` passes ARG to its `get_config`
  (e.g. `cmhn_tacos:paper`)."""
  name, _, arg = name.partition(":")
  module = importlib.import_module(f"vmr_jax.configs.{name}")
  return module.get_config(arg) if arg else module.get_config()


def trace_train_step(config, feature_dim: int, vocab: int):
  """(the train step of `config` traced on shapes alone, `jax.stages.Traced`, the
  state donated; the state's shapes) at `random_batch`'s shapes."""
  spec = registry.for_config(config)
  model = spec.create(config, registry.DataInfo(feature_dim, [f"w{i}" for i in range(vocab)],
                                                None))
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
           for k, v in random_batch(config, feature_dim, vocab,
                                    np.random.default_rng(0)).items()}

  def init_state(rng, batch):
    variables = model.module.init(rng, batch, train=False)
    return train.initial_state(model, variables, config)[0]

  state = jax.eval_shape(init_state, jax.random.PRNGKey(config.seed), batch)
  _, lr_fn = train.create_optimizer(config, state.params, model.frozen)
  return jax.jit(train.make_train_step(model, spec, config, lr_fn),
                 donate_argnums=0).trace(state, batch), state


def step_costs(name: str, config, compute_dtype: str) -> StepCosts:
  """The train step of `config` (called `name`) at its batch, compiled for one device;
  sets `config.train.compute_dtype` and `config.text.vectors`."""
  config.train.compute_dtype = compute_dtype
  config.text.vectors = "random"
  start = time.perf_counter()
  traced, state = trace_train_step(config, *dataset_sizes(config))
  compiled = traced.lower().compile()
  return compiled_costs(name, config, state.params, traced, compiled,
                        time.perf_counter() - start)


def compiled_costs(name: str, config, params, traced, compiled,
                   compile_seconds: float) -> StepCosts:
  """The costs of a train step of `config` (its `jax.stages.Traced` and `Compiled`
  forms) whose parameters are `params` (arrays or shapes)."""
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  return StepCosts(
      name, config.train.compute_dtype, describe_batch(config),
      sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)),
      float(cost.get("flops", 0.0)), dot_flops(traced.jaxpr.jaxpr),
      memory.argument_size_in_bytes, memory.output_size_in_bytes,
      memory.temp_size_in_bytes, memory.alias_size_in_bytes, compile_seconds)


def table(rows: list[StepCosts], fraction: float) -> str:
  """A markdown table of `rows`: sizes, memory, what fits, estimated step times."""
  head = ["config", "dtype", "batch", "params (M)", "XLA GFLOPs", "dot GFLOPs",
          "peak GiB (args / temps)"]
  head += [f"fits {name}" for name in MEMORY_GIB] + [f"ms/step {a.name}" for a in ACCELERATORS]
  lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
  for r in rows:
    cells = [r.config, r.compute_dtype, r.batch, f"{r.parameters / 1e6:.1f}",
             f"{r.xla_flops / 1e9:,.0f}", f"{r.dot_flops / 1e9:,.0f}",
             f"{r.peak_bytes / GIB:.2f} ({r.argument_bytes / GIB:.2f} / "
             f"{r.temp_bytes / GIB:.2f})"]
    cells += ["yes" if r.fits(gib) else "**no**" for gib in MEMORY_GIB.values()]
    cells += [f"{1000 * r.step_seconds(a, fraction):,.0f}" for a in ACCELERATORS]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)
