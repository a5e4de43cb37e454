"""A trained model as a self-contained directory, loadable with no dataset built.

`write` (`--mode=export`, and the end of every training run: `WORKDIR/export`)
writes:

    EXPORT/
      config.json   the run's config (the same as `WORKDIR/config.json`)
      export.json   {"format", "model", "step", "feature_dim", "word_dim"}
      vocab.txt     the word vocabulary, one word a line; a word's id is its line
                    number (0 = padding, 1 = out of vocabulary). Its word vector is
                    that row of the parameter `text_encoder/embedding/embedding`
                    [V, word_dim]: the GloVe rows (fine-tuned where text.trainable)
      bert/         BERT text encoders only: the checkpoint's config.json and the
                    WordPiece vocab.txt
      variables/    Orbax: {"params", "batch_stats" (BatchNorm models)}; no
                    optimizer state

`load` rebuilds the model from `config.json` with `text.vectors = "export"` (the
encoder's shapes from `word_dim` or `bert/config.json`, no GloVe file or BERT
weights read) and restores `variables/` into it. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from vmr_jax import distributed, registry

FORMAT = 1
WORD_TABLE = ("text_encoder", "embedding", "embedding")


@dataclasses.dataclass(frozen=True)
class Exported:
  """A loaded export: what prediction needs."""
  config: ml_collections.ConfigDict  # as trained, text.vectors = "export"
  spec: registry.ModelSpec
  model: registry.Model
  variables: dict  # {"params", ("batch_stats")}, numpy arrays
  words: list[str]  # vocab.txt
  feature_dim: int  # D of the clip features the model reads
  step: int  # the training step of the exported parameters


def write(directory: str, config: ml_collections.ConfigDict, variables: dict,
          words: Sequence[str], feature_dim: int, step: int) -> None:
  """Writes the export of `variables` (`TrainState.variables`) to `directory`
  (replacing an earlier export there; any other non-empty directory is an error);
  `words` and `feature_dim` are the dataset's."""
  directory = os.path.abspath(directory)
  variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats") and v}
  table = _leaf(variables["params"], WORD_TABLE)
  if distributed.is_main():
    if os.path.exists(directory):
      if os.listdir(directory) and not os.path.isfile(os.path.join(directory, "export.json")):
        raise FileExistsError(f"{directory} exists and is not a model export: give an "
                              "empty or new directory")
      shutil.rmtree(directory)
    os.makedirs(directory)
    write_config(os.path.join(directory, "config.json"), config)
    with open(os.path.join(directory, "export.json"), "w") as f:
      json.dump({"format": FORMAT, "model": config.model, "step": int(step),
                 "feature_dim": int(feature_dim),
                 "word_dim": None if table is None else int(table.shape[-1])}, f, indent=1)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
      f.writelines(f"{word}\n" for word in words)
    if config.text.encoder == "bert":
      os.makedirs(os.path.join(directory, "bert"))
      shutil.copy(os.path.join(config.text.bert_dir, "config.json"),
                  os.path.join(directory, "bert", "config.json"))
      shutil.copy(config.data.wordpiece_vocab, os.path.join(directory, "bert", "vocab.txt"))
  distributed.barrier("export files")
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(directory, "variables"), variables)
  checkpointer.wait_until_finished()


def load(directory: str) -> Exported:
  """The model of an export `directory` (`write`), its variables on the host."""
  directory = os.path.abspath(directory)
  manifest_path = os.path.join(directory, "export.json")
  if not os.path.isfile(manifest_path):
    raise FileNotFoundError(f"{directory} is not a model export: export.json is missing "
                            "(write one with python -m vmr_jax.main --mode=export)")
  with open(manifest_path) as f:
    manifest = json.load(f)
  if manifest.get("format") != FORMAT:
    raise ValueError(f"{manifest_path}: format {manifest.get('format')!r}, this vmr_jax "
                     f"reads format {FORMAT}")
  config = read_config(os.path.join(directory, "config.json"))
  with open(os.path.join(directory, "vocab.txt")) as f:
    words = [line.rstrip("\n") for line in f]
  config.text.vectors = "export"
  if manifest["word_dim"] is not None:
    config.text.glove_dim = manifest["word_dim"]
  if config.text.encoder == "bert":
    config.text.bert_dir = os.path.join(directory, "bert")
    config.data.wordpiece_vocab = os.path.join(directory, "bert", "vocab.txt")
  config.data.srl_file = ""  # FVMR's role trees feed its teacher: training only
  spec = registry.for_config(config)
  model = spec.create(config, registry.DataInfo(manifest["feature_dim"], words, None))
  restored = ocp.StandardCheckpointer().restore(os.path.join(directory, "variables"))
  variables = jax.tree.map(np.asarray, dict(restored))
  return Exported(config, spec, model, variables, words, manifest["feature_dim"],
                  manifest["step"])


def write_config(path: str, config: ml_collections.ConfigDict) -> None:
  """A run's config as JSON (`WORKDIR/config.json`, an export's), which
  `read_config` reads back."""
  with open(path, "w") as f:
    f.write(config.to_json_best_effort(indent=1, sort_keys=True))


def read_config(path: str) -> ml_collections.ConfigDict:
  """The config `write_config` wrote, JSON lists back as tuples."""
  with open(path) as f:
    return ml_collections.ConfigDict(_tuples(json.load(f)))


def _leaf(tree: Any, path: tuple[str, ...]):
  for key in path:
    if not hasattr(tree, "get") or key not in tree:
      return None
    tree = tree[key]
  return tree


def _tuples(node):
  """JSON lists -> tuples (configs hold tuples: kernels, thresholds, ...)."""
  if isinstance(node, dict):
    return {k: _tuples(v) for k, v in node.items()}
  if isinstance(node, list):
    return tuple(_tuples(v) for v in node)
  return node
