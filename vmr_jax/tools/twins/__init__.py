"""PyTorch twins of the models: the same layers, sizes, losses and decoding, written
in eager PyTorch, with their parameters named as the Flax models name theirs.

`create(config, feature_dim, vocab_size[, word_dim])` builds the twin of `config.model`; a twin
`model` has `model(batch) -> outputs` (a dict shaped as the Flax model's outputs;
`model.train()` / `.eval()` as the Flax `train` flag), `model.loss(outputs, batch) ->
(scalar, terms)` and `model.decode(outputs, batch) -> [B, (Q,) K, 3]`, on a batch of
tensors (`to_torch`). `vmr_jax.tools.twins.convert.load_flax` copies a Flax
model's variables into its twin; the twin tests (`pytest -k twin`) check that both
compute the same loss, gradients and moments, so `vmr_jax.tools.bench` and
`vmr_jax.tools.compare` time and train the same function in both frameworks. Only the
GloVe text encoder has a twin (the PyTorch side has no BERT of ours).
"""

from __future__ import annotations

import importlib
from typing import Mapping

import numpy as np

_MODELS = {"clear": "CLEAR", "cmhn": "CMHN", "fian": "FIAN", "fvmr": "FVMR",
           "hscnet": "HSCNet"}
_TOKEN_KEYS = ("query_tokens", "verb_tokens", "noun_tokens")


def has(model: str) -> bool:
  """Whether model `model` has a PyTorch twin."""
  return model in _MODELS


def create(config, feature_dim: int, vocab_size: int, word_dim: int | None = None):
  """The PyTorch twin of `config.model`; `word_dim`: the width of the word vectors
  when they come from a file (default: `config.text.glove_dim`)."""
  if config.model not in _MODELS:
    raise ValueError(f"no PyTorch twin of {config.model!r}; have {sorted(_MODELS)}")
  if word_dim is not None and word_dim != config.text.glove_dim:
    import ml_collections
    config = ml_collections.ConfigDict(config.to_dict())
    config.text.glove_dim = word_dim
  name = config.model
  if name == "cmhn" and config.cmhn.get("reading", "paper") == "released":
    name = "cmhn_released"  # written from the authors' code
  if name == "clear" and config.clear.get("reading", "paper") == "released":
    name = "clear_released"  # written from the authors' code
  module = importlib.import_module(f"{__name__}.{name}")
  return getattr(module, _MODELS[config.model])(config, feature_dim, vocab_size)


def to_torch(batch: Mapping[str, np.ndarray]) -> dict:
  """The numeric arrays of a batch as tensors (word ids as int64)."""
  import torch
  out = {}
  for key, value in batch.items():
    value = np.array(value)  # a writable copy
    if value.dtype.kind in "biuf":
      out[key] = torch.from_numpy(value.astype(np.int64) if key in _TOKEN_KEYS else value)
  return out
