"""Flax variables <-> a PyTorch twin's tensors, by path.

A twin names its submodules and tensors as the Flax model names its variables (see
`vmr_jax.tools.twins.common`), so a Flax path `a/b/kernel` is the tensor of
torch module `a.b`. Leaves are converted by the torch module that holds them:

| torch module | Flax leaves | conversion |
| --- | --- | --- |
| `Linear` | kernel `[in, out]`, bias | weight = kernel^T |
| `Conv1d` / `Conv2d` | kernel `[w, in, out]` / `[kh, kw, in, out]`, bias | channels first |
| `weight_norm(Conv1d)` | weight_v `[w, in, out]`, weight_g `[out]`, bias | weight_v channels first, weight_g `[out, 1, 1]` |
| `LayerNorm` | scale, bias | weight = scale |
| `Embedding` | embedding `[V, d]` | weight |
| `LSTM` / `GRU` | `forward_<k>` / `backward_<k>` cells | `vmr_jax.layers.rnn.params_to_torch` |
| any other | a parameter or buffer of the same name | as is |

A Flax name `<name>_<i>` whose twin holds an `nn.Sequential` or `nn.ModuleList`
`<name>` is its entry `<name>.<i>` (the released code's `net[1]`, `network[0]`).

`load_flax(twin, variables)` copies `{"params": ..., "batch_stats": ...}` into the
twin and fails unless every trainable torch parameter received a value.
Flax's recurrent cells have one bias where PyTorch has two (`bias_ih + bias_hh`);
loading zeroes the redundant part of `bias_hh` and masks its gradient, so the twin
trains the same parameters the Flax model does. `to_flax(twin, like, "grad")` reads
the twin's gradients (or its parameters, "param") back into a tree shaped like the
Flax tree `like`, so the two frameworks' gradients can be compared leaf by leaf.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from vmr_jax.layers import rnn as flax_rnn

_TRANSPOSES = {nn.Linear: (1, 0), nn.Conv1d: (2, 1, 0), nn.Conv2d: (3, 2, 0, 1)}
_CONTAINERS = (nn.Sequential, nn.ModuleList)


def load_flax(twin: nn.Module, variables: Mapping[str, Any]) -> None:
  """Copies Flax `variables` (params and, if any, batch_stats) into `twin`."""
  assigned: set[str] = set()
  for collection in variables.values():
    for name, value in _torch_tensors(twin, collection, "").items():
      target = _tensor(twin, name)
      if tuple(target.shape) != tuple(value.shape):
        raise ValueError(f"{name}: Flax gives shape {tuple(value.shape)}, the twin has "
                         f"{tuple(target.shape)}")
      with torch.no_grad():
        target.copy_(torch.as_tensor(np.array(value), dtype=target.dtype))
      assigned.add(name)
  missing = [n for n, p in twin.named_parameters() if n not in assigned]
  if missing:
    raise ValueError(f"the Flax variables give no value for the twin's {missing}")
  for module in twin.modules():
    if isinstance(module, nn.RNNBase):
      _tie_redundant_biases(module)


def to_flax(twin: nn.Module, like: Mapping[str, Any], source: str = "param") -> dict:
  """The twin's parameters (`source="param"`) or gradients ("grad"; zero where a
  parameter got none) as a tree shaped like the Flax params tree `like`."""
  def read(name: str) -> np.ndarray:
    tensor = _tensor(twin, name)
    if source == "grad":
      grad = tensor.grad
      return np.zeros(tuple(tensor.shape), np.float32) if grad is None else grad.numpy()
    return tensor.detach().numpy()
  return _flax_tree(twin, like, "", read)


def _tensor(twin: nn.Module, name: str) -> torch.Tensor:
  module_name, _, leaf = name.rpartition(".")
  return getattr(twin.get_submodule(module_name) if module_name else twin, leaf)


def _child(module: nn.Module, key: str, path: str) -> tuple[Any, str]:
  """The twin's tensor or submodule for Flax key `key`, and its torch name."""
  child = getattr(module, key, None)
  if child is not None:
    return child, key
  container, _, index = key.rpartition("_")
  if index.isdigit() and isinstance(getattr(module, container, None), _CONTAINERS):
    return getattr(module, container)[int(index)], f"{container}.{index}"
  raise ValueError(f"Flax variable {path}{key} has no place in the twin "
                   f"{type(module).__name__}")


def _torch_tensors(module: nn.Module, tree: Mapping[str, Any], prefix: str
                   ) -> dict[str, np.ndarray]:
  """`{torch tensor name: value}` of a Flax subtree at torch `module`."""
  out = {}
  for key, value in tree.items():
    child, torch_key = _child(module, key, prefix.replace(".", "/"))
    name = f"{prefix}{torch_key}"
    if isinstance(child, nn.RNNBase):
      state = flax_rnn.params_to_torch(value, _cell(child), child.num_layers,
                                       child.bidirectional)
      out.update({f"{name}.{k}": v for k, v in state.items()})
    elif isinstance(child, nn.Conv1d) and hasattr(child, "weight_g"):
      out[f"{name}.weight_v"] = np.transpose(np.asarray(value["weight_v"]), (2, 1, 0))
      out[f"{name}.weight_g"] = np.asarray(value["weight_g"]).reshape(-1, 1, 1)
      out[f"{name}.bias"] = np.asarray(value["bias"])
    elif type(child) in _TRANSPOSES:
      out[f"{name}.weight"] = np.transpose(np.asarray(value["kernel"]), _TRANSPOSES[type(child)])
      if "bias" in value:
        out[f"{name}.bias"] = np.asarray(value["bias"])
    elif isinstance(child, nn.LayerNorm):
      out[f"{name}.weight"], out[f"{name}.bias"] = value["scale"], value["bias"]
    elif isinstance(child, nn.Embedding):
      out[f"{name}.weight"] = value["embedding"]
    elif isinstance(child, nn.Module):
      out.update(_torch_tensors(child, value, f"{name}."))
    else:  # a parameter or buffer named as the Flax leaf
      out[name] = np.asarray(value)
  return out


def _flax_tree(module: nn.Module, like: Mapping[str, Any], prefix: str, read) -> dict:
  """The inverse of `_torch_tensors`, reading tensors with `read(name)`."""
  out = {}
  for key, value in like.items():
    child, torch_key = _child(module, key, prefix.replace(".", "/"))
    name = f"{prefix}{torch_key}"
    if isinstance(child, nn.RNNBase):
      state = {k: read(f"{name}.{k}") for k, _ in child.named_parameters()}
      out[key] = flax_rnn.params_from_torch(state, _cell(child), child.num_layers,
                                            child.bidirectional)
    elif isinstance(child, nn.Conv1d) and hasattr(child, "weight_g"):
      out[key] = {"weight_v": np.transpose(read(f"{name}.weight_v"), (2, 1, 0)),
                  "weight_g": read(f"{name}.weight_g").reshape(-1),
                  "bias": read(f"{name}.bias")}
    elif type(child) in _TRANSPOSES:
      inverse = np.argsort(_TRANSPOSES[type(child)])
      out[key] = {"kernel": np.transpose(read(f"{name}.weight"), inverse)}
      if "bias" in value:
        out[key]["bias"] = read(f"{name}.bias")
    elif isinstance(child, nn.LayerNorm):
      out[key] = {"scale": read(f"{name}.weight"), "bias": read(f"{name}.bias")}
    elif isinstance(child, nn.Embedding):
      out[key] = {"embedding": read(f"{name}.weight")}
    elif isinstance(child, nn.Module):
      out[key] = _flax_tree(child, value, f"{name}.", read)
    else:
      out[key] = read(name)
  return out


def _cell(rnn: nn.RNNBase) -> str:
  return {nn.LSTM: "lstm", nn.GRU: "gru"}[type(rnn)]


def _tie_redundant_biases(rnn: nn.RNNBase) -> None:
  """Zeroes the parts of `bias_hh_*` that Flax's cells do not have (all of the LSTM's,
  the GRU's reset and update gates) and keeps them at zero: their gradient is masked."""
  for name, parameter in rnn.named_parameters():
    if not name.startswith("bias_hh"):
      continue
    keep = torch.zeros_like(parameter)
    if isinstance(rnn, nn.GRU):
      keep[-len(keep) // 3:] = 1.0  # b_hn, which the reset gate multiplies
    with torch.no_grad():
      parameter.mul_(keep)
    if not getattr(parameter, "_vmr_tied", False):
      parameter.register_hook(lambda grad, keep=keep: grad * keep)
      parameter._vmr_tied = True
