"""Models by name: what the generic trainer and evaluator need to know of each.

Each name has an `Entry`: the model file, whose `SPEC` (or `spec_for(config)`, for a
model with several readings) is a `ModelSpec`, and its demo config on the synthetic
benchmark. `train.py` and `evaluate.py` use only these functions, so no model-specific
code enters them. `names()` and `variants()` drive every per-model test; a model of
one's own is added with `register` (tests/toy_model.py does, and runs through them).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from typing import Any, Callable, Mapping, Sequence

from flax import traverse_util
import flax.linen as nn
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What a model may need to know of its dataset."""
  feature_dim: int
  words: Sequence[str]  # the word vocabulary (GloVe rows)
  cache_dir: str | None  # where derived files (GloVe matrix) are cached


@dataclasses.dataclass(frozen=True)
class Model:
  """A built model: its module, pretrained parameters to load over its
  initialization (`{submodule name: params}`, nested as in the params tree), and the
  params paths that stay frozen (their optimizer updates are zero)."""
  module: nn.Module
  pretrained: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  frozen: tuple[tuple[str, ...], ...] = ()


def load_pretrained(params: Mapping[str, Any], pretrained: Mapping[str, Any]) -> dict:
  """`params` with every leaf of the nested `pretrained` dict put at the same path.

  Each pretrained leaf must exist in `params` with the same shape; otherwise the
  error names its path.
  """
  flat = traverse_util.flatten_dict(dict(params))
  for path, value in traverse_util.flatten_dict(dict(pretrained)).items():
    name = "/".join(path)
    if path not in flat:
      raise ValueError(f"pretrained parameter {name} has no place in the model")
    if tuple(flat[path].shape) != tuple(np.shape(value)):
      raise ValueError(f"pretrained parameter {name} has shape {np.shape(value)}, the "
                       f"model's is {tuple(flat[path].shape)}")
    flat[path] = jnp.asarray(value, dtype=flat[path].dtype)
  return traverse_util.unflatten_dict(flat)


@dataclasses.dataclass(frozen=True)
class Retrieval:
  """How a model ranks the moments of many videos for a sentence with their video
  side computed once (`vmr_jax.predictor`). Each function reads the model's
  evaluation outputs of a video-level batch; the video side is computed from batches
  with a placeholder query, the query side from a batch with a placeholder video
  (whose outputs the query side does not read, so XLA drops its computation).

  moments: `(outputs, batch, config) -> (entries, times [B, N, 2] s, valid [B, N])`:
    entries, a pytree of `[B, N, ...]` arrays, are what the score needs of each of a
    video's N candidate moments.
  queries: `(outputs, config) -> pytree`: the query side of the batch's one video's
    Q queries (`[Q, ...]` arrays, and anything else the score needs, e.g. weights).
  score: `(entries [V, N, ...], queries, config) -> [S, V, N]` scores, higher is
    better (the order decode ranks by; -inf: not a candidate for that query).
  host_index: optional `(entries, valid [V, N]) -> index` on the host, with
    `index.top_k(queries, k)` equal to `predictor.make_corpus_top_k`'s, for a CPU where
    a library searches faster than XLA (`vmr_jax.faiss_index`); `host_available()`
    says whether it can be built here.
  """
  moments: Callable[[Any, Mapping[str, jnp.ndarray], Any], tuple[Any, jnp.ndarray, jnp.ndarray]]
  queries: Callable[[Any, Any], Any]
  score: Callable[[Any, Any, Any], jnp.ndarray]
  host_index: Callable[[Any, Any], Any] | None = None
  host_available: Callable[[], bool] = lambda: False


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """
  create: `(config, DataInfo) -> Model`.
  loss: `(outputs, batch, config) -> (scalar, {name: scalar})`, batch of device arrays.
  decode: `(outputs, batch, config) -> [B, (Q,) K, 3]` the K best moments
    (start, end, score) in seconds, before NMS; jit-compiled with the forward pass.
  data: the `config.data` values the model needs, e.g. `{"batch_kind": "video"}`, a
    tuple for one of several (see data_pipelines.input_pipeline); `train.setup`
    checks them.
  eval_stats: optional `(outputs, batch, config) -> {name: [B, (Q)]}` per-query
    statistics of the evaluation forward pass (e.g. the share of candidates a
    search scored); the evaluator reports their mean over the split's queries.
  retrieval: optional `Retrieval`, for models whose video side can be precomputed;
    without it the predictor runs the whole model on every (video, sentence) pair.
  map_clips: optional `config -> T`, the clips of the model's 2D map when it is not
    `data.num_clips` (a pooled frame layer), for 2D-TAN's tie order
    (`metrics.map_order`).
  """
  create: Callable[[Any, DataInfo], Model]
  loss: Callable[[Any, Mapping[str, jnp.ndarray], Any], tuple[jnp.ndarray, dict]]
  decode: Callable[[Any, Mapping[str, jnp.ndarray], Any], jnp.ndarray]
  data: Mapping[str, Any]
  eval_stats: Callable[[Any, Mapping[str, jnp.ndarray], Any], Mapping[str, jnp.ndarray]] | None = None
  retrieval: Retrieval | None = None
  map_clips: Callable[[Any], int] | None = None


@dataclasses.dataclass(frozen=True)
class Entry:
  """Where model `name` is found.

  model: the module defining `SPEC` (and `spec_for(config)` where the config picks one
    of several readings).
  config: its demo config module; `get_config(arg)` takes "", "READING", "SIZE" or
    "SIZE,READING" (`vmr_jax.configs.default.parse_arg`), and `READINGS`, where
    defined, lists the readings that are separate specs, the default first.
  """
  model: str
  config: str


_ENTRIES = {name: Entry(f"vmr_jax.models.{name}", f"vmr_jax.configs.{name}_synthetic")
            for name in ("clear", "cmhn", "fian", "fvmr", "hscnet")}


def register(name: str, model: str, config: str) -> None:
  """Adds model `name`: `model` and `config` are module names, as in `Entry`."""
  if name in _ENTRIES:
    raise ValueError(f"model {name!r} is already registered ({_ENTRIES[name]})")
  _ENTRIES[name] = Entry(model, config)


def names() -> list[str]:
  """Every registered model's name, sorted."""
  return sorted(_ENTRIES)


def variants() -> list[str]:
  """`MODEL` for each model (its default reading) and `MODEL/READING` for each of its
  other readings: what the per-model tests run."""
  out = []
  for name in names():
    readings = getattr(importlib.import_module(_entry(name).config), "READINGS", ("",))
    out += [name] + [f"{name}/{reading}" for reading in readings[1:]]
  return out


def demo_config(variant: str, size: str = ""):
  """The demo config of `variant` ("MODEL" or "MODEL/READING") at `size` ("", "tiny",
  "small"; `vmr_jax.configs.default.shrink`)."""
  name, _, reading = variant.partition("/")
  arg = ",".join(part for part in (size, reading) if part)
  module = importlib.import_module(_entry(name).config)
  return module.get_config(arg) if arg else module.get_config()


def demo_sizes(name: str) -> Mapping[str, Mapping[str, Any]]:
  """The `SIZES` of model `name`'s demo config: `vmr_jax.configs.default.shrink`'s
  fields of each size (and "SIZE/READING")."""
  return importlib.import_module(_entry(name).config).SIZES


def get(name: str) -> ModelSpec:
  """The spec of model `name` (its paper reading, where it has several)."""
  return _module(name).SPEC


def for_config(config) -> ModelSpec:
  """The spec `config` trains and evaluates: `config.model`'s, in the reading its
  section names where the model file picks a spec per config (`spec_for`)."""
  module = _module(config.model)
  return module.spec_for(config) if hasattr(module, "spec_for") else module.SPEC


class UnknownModelError(ValueError):
  """`config.model` names no registered model (the message suggests the closest)."""


def _entry(name: str) -> Entry:
  if name not in _ENTRIES:
    close = difflib.get_close_matches(name, _ENTRIES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UnknownModelError(f"unknown model {name!r}: {hint}the models are "
                            f"{', '.join(names())}")
  return _ENTRIES[name]


def _module(name: str):
  return importlib.import_module(_entry(name).model)
