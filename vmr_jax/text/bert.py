"""BERT as a Flax linen module, with weights from a local transformers checkpoint.

transformers 5 ships no Flax models, so the module is ours; transformers stays the
source of configs, tokenizers and PyTorch weights. A checkpoint directory is what
`BertModel.save_pretrained` writes (or a hub download such as `bert-base-uncased`):
`config.json`, `model.safetensors` (or `model.safetensors.index.json` + shards, or
`pytorch_model.bin`, which needs torch to read) and, for tokenizing, `vocab.txt`.

`params_from_torch` converts by an explicit name table (`torch_name_map`): every
parameter of the module must be found in the checkpoint with the expected shape,
and every checkpoint tensor must be used, except the pre-training heads (`cls.*`)
and the `position_ids`/`token_type_ids` buffers. Anything else is an error that
names the directory and the tensors.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmr_jax.layers.attention import TransformerLayer, masked_mean

ACTIVATIONS: dict[str, Callable] = {
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "relu": jax.nn.relu,
}
POOLINGS = ("cls", "pooled", "mean")
_IGNORED_SUFFIXES = ("position_ids", "token_type_ids")


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """The fields of transformers' `BertConfig` that the module uses."""
  vocab_size: int = 30522
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  hidden_act: str = "gelu"
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1

  @classmethod
  def from_dir(cls, directory: str) -> "BertConfig":
    """Reads `config.json`; errors name the file and the unsupported field."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
      raise FileNotFoundError(f"BERT checkpoint {directory}: config.json is missing")
    with open(path) as f:
      raw = json.load(f)
    if raw.get("model_type", "bert") != "bert":
      raise ValueError(f"{path}: model_type is {raw['model_type']!r}, expected 'bert'")
    if raw.get("position_embedding_type", "absolute") != "absolute":
      raise ValueError(f"{path}: position_embedding_type "
                       f"{raw['position_embedding_type']!r} is not supported")
    if raw.get("hidden_act", "gelu") not in ACTIVATIONS:
      raise ValueError(f"{path}: hidden_act {raw['hidden_act']!r} is not one of "
                       f"{sorted(ACTIVATIONS)}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in names})


class BertModel(nn.Module):
  """`input_ids [B, L]`, `mask [B, L]` -> hidden states `[B, L, H]`, pooled `[B, H]`."""
  config: BertConfig

  @nn.compact
  def __call__(self, input_ids, mask, token_type_ids=None, *, train: bool = False):
    cfg = self.config
    length = input_ids.shape[1]
    if length > cfg.max_position_embeddings:
      raise ValueError(f"sequence length {length} exceeds max_position_embeddings "
                       f"{cfg.max_position_embeddings}")
    if token_type_ids is None:
      token_type_ids = jnp.zeros_like(input_ids)
    embed = lambda n, name: nn.Embed(n, cfg.hidden_size, name=name)
    x = (embed(cfg.vocab_size, "word_embeddings")(input_ids)
         + embed(cfg.max_position_embeddings, "position_embeddings")(jnp.arange(length))
         + embed(cfg.type_vocab_size, "token_type_embeddings")(token_type_ids))
    x = nn.LayerNorm(cfg.layer_norm_eps, name="embeddings_norm")(x)
    x = nn.Dropout(cfg.hidden_dropout_prob, deterministic=not train)(x)
    mask = mask.astype(bool)
    for i in range(cfg.num_hidden_layers):
      x = TransformerLayer(
          cfg.num_attention_heads, cfg.intermediate_size, cfg.hidden_dropout_prob,
          cfg.attention_probs_dropout_prob, ACTIVATIONS[cfg.hidden_act], cfg.layer_norm_eps,
          name=f"layer_{i}")(x, mask, train=train)
    pooled = jnp.tanh(nn.Dense(cfg.hidden_size, name="pooler")(x[:, 0]))
    return x, pooled


def sentence_vector(hidden: jnp.ndarray, pooled: jnp.ndarray, mask: jnp.ndarray,
                    pooling: str) -> jnp.ndarray:
  """`[B, H]`: the [CLS] state (`cls`), the pooler output (`pooled`), or the mean of
  the last layer over unmasked tokens (`mean`)."""
  if pooling == "cls":
    return hidden[:, 0]
  if pooling == "pooled":
    return pooled
  if pooling == "mean":
    return masked_mean(hidden, mask)
  raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def torch_name_map(config: BertConfig) -> dict[str, tuple[tuple[str, ...], bool]]:
  """transformers tensor name -> (Flax param path, transpose?). The one mapping."""
  table = {}

  def dense(torch_prefix, path):
    table[f"{torch_prefix}.weight"] = ((*path, "kernel"), True)
    table[f"{torch_prefix}.bias"] = ((*path, "bias"), False)

  def norm(torch_prefix, path):
    table[f"{torch_prefix}.weight"] = ((*path, "scale"), False)
    table[f"{torch_prefix}.bias"] = ((*path, "bias"), False)

  for name in ("word", "position", "token_type"):
    table[f"embeddings.{name}_embeddings.weight"] = ((f"{name}_embeddings", "embedding"),
                                                      False)
  norm("embeddings.LayerNorm", ("embeddings_norm",))
  for i in range(config.num_hidden_layers):
    torch_layer, layer = f"encoder.layer.{i}", f"layer_{i}"
    for proj in ("query", "key", "value"):
      dense(f"{torch_layer}.attention.self.{proj}", (layer, "attention", proj))
    dense(f"{torch_layer}.attention.output.dense", (layer, "attention", "output"))
    norm(f"{torch_layer}.attention.output.LayerNorm", (layer, "attention_norm"))
    dense(f"{torch_layer}.intermediate.dense", (layer, "intermediate"))
    dense(f"{torch_layer}.output.dense", (layer, "output"))
    norm(f"{torch_layer}.output.LayerNorm", (layer, "output_norm"))
  dense("pooler.dense", ("pooler",))
  return table


def params_from_torch(state: Mapping[str, np.ndarray], config: BertConfig,
                      source: str = "checkpoint") -> dict:
  """transformers `BertModel`/`BertFor*` state dict (numpy) -> `BertModel` params."""
  state = {_canonical_name(k): v for k, v in state.items()}
  table = torch_name_map(config)
  missing = sorted(set(table) - set(state))
  unused = sorted(k for k in set(state) - set(table)
                  if not k.startswith("cls.") and not k.endswith(_IGNORED_SUFFIXES))
  if missing or unused:
    raise ValueError(f"{source}: tensors do not match a BERT with "
                     f"{config.num_hidden_layers} layers; missing: {missing[:8]}"
                     f"{' ...' if len(missing) > 8 else ''}; unused: {unused[:8]}"
                     f"{' ...' if len(unused) > 8 else ''}")
  expected = jax.eval_shape(
      lambda: BertModel(config).init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32),
                                     jnp.ones((1, 1), bool)))["params"]
  params: dict = {}
  for torch_name, (path, transpose) in table.items():
    value = np.asarray(state[torch_name], dtype=np.float32)
    value = value.T if transpose else value
    want = functools.reduce(lambda d, k: d[k], path, expected).shape
    if value.shape != tuple(want):
      raise ValueError(f"{source}: {torch_name} has shape {value.shape} (after transpose), "
                       f"the config needs {tuple(want)}")
    node = params
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return params


def load_pretrained(directory: str) -> tuple[BertConfig, dict]:
  """Config and Flax params of the checkpoint in `directory`."""
  config = BertConfig.from_dir(directory)
  return config, params_from_torch(read_weights(directory), config, source=directory)


def read_weights(directory: str) -> dict[str, np.ndarray]:
  """All tensors of a checkpoint directory as numpy arrays."""
  single = os.path.join(directory, "model.safetensors")
  index = os.path.join(directory, "model.safetensors.index.json")
  torch_bin = os.path.join(directory, "pytorch_model.bin")
  from safetensors.numpy import load_file
  if os.path.isfile(single):
    return load_file(single)
  if os.path.isfile(index):
    with open(index) as f:
      shards = sorted(set(json.load(f)["weight_map"].values()))
    state = {}
    for shard in shards:
      path = os.path.join(directory, shard)
      if not os.path.isfile(path):
        raise FileNotFoundError(f"BERT checkpoint {directory}: shard {shard} listed in "
                                "model.safetensors.index.json is missing")
      state.update(load_file(path))
    return state
  if os.path.isfile(torch_bin):
    try:
      import torch
    except ImportError as e:
      raise ImportError(f"{torch_bin} needs torch to read; install torch or save the "
                        "checkpoint as model.safetensors") from e
    loaded = torch.load(torch_bin, map_location="cpu", weights_only=True)
    return {k: v.float().numpy() for k, v in loaded.items()}
  raise FileNotFoundError(f"BERT checkpoint {directory}: no weights (model.safetensors, "
                          "model.safetensors.index.json or pytorch_model.bin)")


def _canonical_name(name: str) -> str:
  """Strips the `bert.` prefix of `BertFor*` models; old LayerNorm gamma/beta names."""
  name = name.removeprefix("bert.")
  return name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
      "LayerNorm.beta", "LayerNorm.bias")
