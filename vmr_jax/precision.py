"""Mixed precision: float32 parameters, optimizer state and losses; the model's
activations in `config.train.compute_dtype` (float32 | bfloat16).

The one place where dtypes change. The train step (`train.make_train_step`), the
evaluation forward pass (`evaluate.make_predict_fn`) and the benchmarks call
`module.apply` on `cast_variables(variables)` and `cast_batch(batch)`, and give the
loss and the decode `to_float32(outputs)`:
- parameters: every floating leaf of `params` is cast to the compute dtype; the cast
  is part of the differentiated function, so the gradients come back in float32 to
  float32 parameters. BatchNorm statistics (`batch_stats`) are not cast: flax's
  BatchNorm and LayerNorm compute their statistics in float32 and keep them so.
- batch: only the float clip features (`FEATURE_KEYS`). Times (`duration`,
  `gt_times`, in seconds) stay float32: bfloat16 keeps 8 significant bits, so 200 s
  would step by 1 s.
- outputs: every floating leaf back to float32, so the losses and decodes compute in
  float32 whatever the activations were.
With float32 every function here leaves every array as it is, so float32 runs are
bit for bit what they were before compute dtypes existed.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
FEATURE_KEYS = ("video_feats",)  # the batch's float inputs to the model


def compute_dtype(config) -> jnp.dtype:
  """The dtype of `config.train.compute_dtype`; an error names the allowed values."""
  name = config.train.compute_dtype
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"config.train.compute_dtype must be one of {tuple(COMPUTE_DTYPES)}, "
                     f"got {name!r}")
  return COMPUTE_DTYPES[name]


def _cast_floats(tree, dtype):
  """`tree` with every floating leaf of another dtype cast to `dtype`."""
  def cast(x):
    if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype:
      return x.astype(dtype)
    return x
  return jax.tree.map(cast, tree)


def cast_variables(variables: Mapping[str, Any], dtype) -> dict:
  """`{"params", ...}` with the params in `dtype`; other collections unchanged."""
  return {**variables, "params": _cast_floats(variables["params"], dtype)}


def cast_batch(batch: Mapping[str, Any], dtype) -> dict:
  """The batch with its `FEATURE_KEYS` in `dtype`; every other key unchanged."""
  return {k: _cast_floats(v, dtype) if k in FEATURE_KEYS else v for k, v in batch.items()}


def to_float32(outputs):
  """The model's outputs with every floating leaf in float32."""
  return _cast_floats(outputs, jnp.float32)
