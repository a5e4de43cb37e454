"""PyTorch versions of the models (same layers and sizes), used only by
`vmr_jax.bench` to time the same train step in eager PyTorch on the same machine.

Each is `Model(config, feature_dim, vocab_size, glove_dim)`, whose forward pass takes
a batch of tensors of the model's batch kind and returns the training loss.
"""

import importlib

_MODELS = {"clear": "CLEAR", "cmhn": "CMHN", "fian": "FIAN", "fvmr": "FVMR",
           "hscnet": "HSCNet"}


def create(config, feature_dim: int, vocab_size: int, glove_dim: int):
  """The PyTorch equivalent of `config.model`."""
  if config.model not in _MODELS:
    raise ValueError(f"no PyTorch equivalent of {config.model!r}; have {sorted(_MODELS)}")
  module = importlib.import_module(f"{__name__}.{config.model}")
  return getattr(module, _MODELS[config.model])(config, feature_dim, vocab_size, glove_dim)
