"""Stacked (bi)directional LSTM / GRU over padded sequences (flax.linen.RNN).

`BiRNN` runs like `torch.nn.LSTM/GRU(bidirectional=True, batch_first=True)` (or,
with `bidirectional=False`, its forward direction alone) over a
packed sequence: each sequence stops at its length (from the mask), the backward
direction starts at its last valid step, padded outputs are zero, and dropout (if
any) is applied between layers only. `params_from_torch` maps a PyTorch state dict
onto it, so PyTorch checkpoints load and parity can be tested.
"""

from __future__ import annotations

from typing import Mapping

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

CELLS = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}
# PyTorch packs the gates of one layer/direction in this order along axis 0.
TORCH_GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


class BiRNN(nn.Module):
  """`[B, L, D]` inputs and `[B, L]` mask -> `[B, L, 2H]` outputs and `[B, 2H]` final
  (`[B, L, H]`, `[B, H]` with `bidirectional=False`).

  The final state is [forward output at the last valid step; backward output at step
  0], as `h_n` of the last layer in PyTorch. The recurrent state is float32 whatever
  the inputs' dtype (flax's cells keep it in their param dtype, and a bfloat16 carry
  would round at every step); the outputs are in the inputs' dtype.
  """
  hidden: int
  num_layers: int = 1
  cell: str = "lstm"
  dropout: float = 0.0
  bidirectional: bool = True

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    if self.cell not in CELLS:
      raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
    lengths = mask.sum(-1).astype(jnp.int32)
    for layer in range(self.num_layers):
      if layer:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      outputs = [nn.RNN(CELLS[self.cell](self.hidden, name=f"forward_{layer}"))(
          x, seq_lengths=lengths)]
      if self.bidirectional:
        outputs.append(nn.RNN(CELLS[self.cell](self.hidden, name=f"backward_{layer}"),
                              reverse=True, keep_order=True)(x, seq_lengths=lengths))
      x = jnp.where(mask[..., None], jnp.concatenate(outputs, axis=-1), 0.0).astype(x.dtype)
    last = jnp.maximum(lengths - 1, 0)
    forward_final = jnp.take_along_axis(x[..., :self.hidden], last[:, None, None], axis=1)
    final = jnp.concatenate([forward_final[:, 0], x[:, 0, self.hidden:]], axis=-1)
    return x, final


def params_from_torch(state: Mapping[str, np.ndarray], cell: str, num_layers: int,
                      bidirectional: bool = True) -> dict:
  """`torch.nn.LSTM/GRU(bidirectional=...)` state dict (numpy) -> `BiRNN` params.

  PyTorch keys: `weight_ih_l{k}[_reverse]` [G*H, D], `weight_hh_l{k}[_reverse]`
  [G*H, H], `bias_ih_l{k}[_reverse]`, `bias_hh_l{k}[_reverse]` [G*H], gates stacked
  in `TORCH_GATES[cell]` order. Flax cells have one Dense per gate for the input
  (`i<gate>`) and for the hidden state (`h<gate>`); the LSTM keeps only the hidden
  bias (so it gets b_ih + b_hh), the GRU keeps the input biases (r, z get
  b_ih + b_hh) plus `hn`'s own bias (b_hn, which the reset gate multiplies).
  """
  gates = TORCH_GATES[cell]
  params = {}
  for layer in range(num_layers):
    directions = (("forward", ""), ("backward", "_reverse"))[:2 if bidirectional else 1]
    for direction, suffix in directions:
      name = f"l{layer}{suffix}"
      w_ih, w_hh = (np.asarray(state[f"weight_{k}_{name}"]) for k in ("ih", "hh"))
      b_ih, b_hh = (np.asarray(state[f"bias_{k}_{name}"]) for k in ("ih", "hh"))
      split = lambda a: dict(zip(gates, np.split(a, len(gates), axis=0)))
      w_i, w_h, bi, bh = split(w_ih), split(w_hh), split(b_ih), split(b_hh)
      cell_params = {}
      for g in gates:
        cell_params[f"i{g}"] = {"kernel": w_i[g].T}
        cell_params[f"h{g}"] = {"kernel": w_h[g].T}
        if cell == "lstm":
          cell_params[f"h{g}"]["bias"] = bi[g] + bh[g]
        elif g == "n":
          cell_params["in"]["bias"] = bi[g]
          cell_params["hn"]["bias"] = bh[g]
        else:
          cell_params[f"i{g}"]["bias"] = bi[g] + bh[g]
      params[f"{direction}_{layer}"] = cell_params
  return params


def params_to_torch(params: Mapping[str, Mapping], cell: str, num_layers: int,
                    bidirectional: bool = True) -> dict[str, np.ndarray]:
  """`BiRNN` params -> a `torch.nn.LSTM/GRU` state dict (numpy), the inverse of
  `params_from_torch`: each Flax bias goes into `bias_ih`, and `bias_hh` holds only
  the GRU's `hn` bias (its other parts, redundant with `bias_ih`, are zero)."""
  gates = TORCH_GATES[cell]
  state = {}
  for layer in range(num_layers):
    directions = (("forward", ""), ("backward", "_reverse"))[:2 if bidirectional else 1]
    for direction, suffix in directions:
      cell_params, name = params[f"{direction}_{layer}"], f"l{layer}{suffix}"
      state[f"weight_ih_{name}"] = np.concatenate(
          [np.asarray(cell_params[f"i{g}"]["kernel"]).T for g in gates])
      state[f"weight_hh_{name}"] = np.concatenate(
          [np.asarray(cell_params[f"h{g}"]["kernel"]).T for g in gates])
      kind = "h" if cell == "lstm" else "i"  # where the Flax cell keeps its biases
      state[f"bias_ih_{name}"] = np.concatenate(
          [np.asarray(cell_params[f"{kind}{g}"]["bias"]) for g in gates])
      hidden_bias = np.zeros_like(state[f"bias_ih_{name}"])
      if cell == "gru":
        hidden_bias[-len(hidden_bias) // 3:] = np.asarray(cell_params["hn"]["bias"])
      state[f"bias_hh_{name}"] = hidden_bias
  return state
