"""Benchmarks, JAX against the PyTorch equivalent, measured in one run.

    python -m vmr_jax.bench --task=bert [--sentences=PATH] [--bert_dir=DIR]
        [--batch_size=64] [--limit=N]

`bert`: encodes every sentence of a TACoS/ActivityNet-format JSON file (default: the
TACoS test split) with BERT, in JAX (`vmr_jax.text.bert`, jit) and in transformers'
PyTorch `BertModel` (eager, `no_grad`), on the same batches: sentences sorted by
length, padded to the batch's longest (rounded up to a multiple of 8, so JAX compiles
a few shapes). Without `--bert_dir` the model is a randomly initialized BERT-base
(12 layers, 768 hidden) with a vocabulary made of the sentences' words. Prints the
compile time, the encode time of each framework, their ratio and the largest
difference between their last hidden states. Imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from vmr_jax.text import bert
from vmr_jax.text.wordpiece import WordPieceTokenizer
from vmr_jax.text.words import split_words

_DEFAULT_SENTENCES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                  "annotations", "tacos", "test.json")
_TASK = flags.DEFINE_enum("task", "bert", ["bert"], "What to benchmark.")
_SENTENCES = flags.DEFINE_string("sentences", _DEFAULT_SENTENCES,
                                 "Annotation JSON ({vid: {sentences: [...]}}).")
_BERT_DIR = flags.DEFINE_string("bert_dir", "", "transformers BERT checkpoint; "
                                "empty: random BERT-base.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Sentences per batch.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Use only the first N sentences (0: all).")


def read_sentences(path: str) -> list[str]:
  with open(path) as f:
    return [s for entry in json.load(f).values() for s in entry["sentences"]]


def random_bert_base(directory: str, sentences: list[str]) -> None:
  """Writes a random BERT-base checkpoint whose vocab.txt holds the sentences' words."""
  import torch
  import transformers
  words = sorted({w for s in sentences for w in split_words(s)})
  letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
  vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + letters
  vocab += [f"##{c}" for c in letters]
  config = transformers.BertConfig()  # BERT-base sizes
  vocab += [f"[unused{i}]" for i in range(config.vocab_size - len(vocab))]
  with open(os.path.join(directory, "vocab.txt"), "w") as f:
    f.write("\n".join(vocab) + "\n")
  torch.manual_seed(0)
  transformers.BertModel(config).save_pretrained(directory)


def batches(tokenizer: WordPieceTokenizer, sentences: list[str], batch_size: int):
  """Length-sorted batches of (ids [B, L], mask [B, L]), L a multiple of 8."""
  lengths = [len(ids) for ids in tokenizer._tokenizer(sentences)["input_ids"]]
  order = np.argsort(lengths, kind="stable")
  for start in range(0, len(order), batch_size):
    chunk = [sentences[i] for i in order[start:start + batch_size]]
    longest = max(lengths[i] for i in order[start:start + batch_size])
    yield tokenizer.encode(chunk, -(-longest // 8) * 8)


def bench_bert() -> None:
  import torch
  import transformers
  sentences = read_sentences(_SENTENCES.value)
  if _LIMIT.value:
    sentences = sentences[:_LIMIT.value]
  with tempfile.TemporaryDirectory() as tmp:
    directory = _BERT_DIR.value or tmp
    if not _BERT_DIR.value:
      random_bert_base(directory, sentences)
    config, params = bert.load_pretrained(directory)
    tokenizer = WordPieceTokenizer.from_bert_dir(directory, config.vocab_size)
    torch_model = transformers.BertModel.from_pretrained(directory).eval()
  data = list(batches(tokenizer, sentences, _BATCH_SIZE.value))
  print(f"{len(sentences)} sentences, {len(data)} batches of <= {_BATCH_SIZE.value}, "
        f"{sum(int(m.sum()) for _, m in data)} tokens; BERT {config.num_hidden_layers} "
        f"layers x {config.hidden_size}; devices: {jax.devices()}, "
        f"torch threads {torch.get_num_threads()}")

  params = jax.device_put(params)
  encode = jax.jit(lambda p, ids, mask: bert.BertModel(config).apply({"params": p}, ids,
                                                                     mask)[0])
  start = time.perf_counter()
  for shape in sorted({ids.shape for ids, _ in data}):
    encode.lower(params, jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)).compile()
    encode(params, jnp.zeros(shape, jnp.int32), jnp.ones(shape, bool)).block_until_ready()
  compile_seconds = time.perf_counter() - start

  start = time.perf_counter()
  jax_out = [encode(params, ids, mask) for ids, mask in data]
  jax.block_until_ready(jax_out)
  jax_seconds = time.perf_counter() - start

  start = time.perf_counter()
  with torch.no_grad():
    torch_out = [torch_model(input_ids=torch.from_numpy(ids.astype(np.int64)),
                             attention_mask=torch.from_numpy(mask.astype(np.int64))
                             ).last_hidden_state for ids, mask in data]
  torch_seconds = time.perf_counter() - start

  diff = max(float(np.abs(np.asarray(j)[m] - t.numpy()[m]).max())
             for j, t, (_, m) in zip(jax_out, torch_out, data))
  print(f"JAX compile ({len({ids.shape for ids, _ in data})} shapes): {compile_seconds:.1f} s")
  print(f"JAX encode:     {jax_seconds:.2f} s ({len(sentences) / jax_seconds:.0f} sentences/s)")
  print(f"PyTorch encode: {torch_seconds:.2f} s ({len(sentences) / torch_seconds:.0f} "
        "sentences/s)")
  print(f"PyTorch / JAX time: {torch_seconds / jax_seconds:.2f}x; "
        f"max |JAX - PyTorch| on real tokens: {diff:.2e}")


def main(argv):
  del argv
  if _TASK.value == "bert":
    bench_bert()


if __name__ == "__main__":
  app.run(main)
