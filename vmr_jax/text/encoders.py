"""Text encoders by name, built from a model config's `text` section.

Every encoder is a Flax module `(tokens [..., L], mask [..., L], train) -> (words
[..., L, H], sentence [..., H])` (leading axes such as [B] or [B, Q] are flattened
for the network and restored), returned in a `TextEncoder` that also names the batch
keys it reads, carries pretrained parameters to load over its initialization
(`vmr_jax.registry.load_pretrained`) and lists its frozen parameter paths.

Registry (`config.text.encoder`):
- `bert`: `vmr_jax.text.bert.BertModel` from `config.text.bert_dir`; sentence vector by
  `pooling` (cls | pooled | mean); reads `query_wordpiece` (the input pipeline makes
  them when `config.data.wordpiece_vocab` is `<bert_dir>/vocab.txt`). Only when asked
  for by name with `vectors = "random"`: BERT-base's sizes (`bert.BertConfig()`) with
  the module's random initialization and no checkpoint (memory and speed
  measurements, `vmr_jax.tools.bench --memory`); with `vectors = "export"`, the sizes of
  `bert_dir/config.json` and no weights (a model export, `vmr_jax.export`, restores
  them).
- `glove`: an embedding table for the dataset's `WordVocab`, initialized from
  `config.text.glove_file` (`vmr_jax.text.glove`; `vectors = "glove"`, the default:
  an empty or missing file is an error naming the field) or, only when asked for by
  name with `vectors = "random"`, from N(0, 1) vectors of `glove_dim` (benchmarks,
  parity tests, a table learned from scratch), or with `vectors = "export"` a table
  of `glove_dim` whose rows a model export restores (`vmr_jax.export`); optionally followed by a recurrent head
  (`head`: "" | bilstm | bigru, from `vmr_jax.layers.rnn`); reads `query_tokens`.
  Without a head the sentence vector is the masked mean of the word vectors; with one,
  the head's final state.

`trainable=False` freezes an encoder's pretrained part (BERT, or the GloVe table; a
recurrent head still trains): its outputs pass through `stop_gradient`, so it gets
zero gradients, and `TextEncoder.frozen` names it so the trainer gives it no
optimizer update either (weight decay included).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from vmr_jax.layers.attention import masked_mean
from vmr_jax.layers.rnn import BiRNN
from vmr_jax.text import bert, glove

HEADS = {"": None, "bilstm": "lstm", "bigru": "gru"}


@dataclasses.dataclass(frozen=True)
class TextEncoder:
  module: nn.Module
  token_key: str  # batch key of the token ids [.., L]
  mask_key: str  # batch key of their mask
  pretrained: Mapping[str, Any] | None = None  # params of `module` to load, if any
  frozen: tuple[tuple[str, ...], ...] = ()  # params paths of `module` not to train


class BertTextEncoder(nn.Module):
  """BERT words `[B, L, H]` and sentence vector `[B, H]`."""
  config: bert.BertConfig
  pooling: str = "cls"
  trainable: bool = True

  @nn.compact
  def __call__(self, tokens, mask, *, train: bool = False):
    lead, (tokens, mask) = tokens.shape[:-1], _flatten(tokens, mask)
    hidden, pooled = bert.BertModel(self.config, name="bert")(
        tokens, mask, train=train and self.trainable)
    sentence = bert.sentence_vector(hidden, pooled, mask, self.pooling)
    if not self.trainable:
      hidden, sentence = jax.lax.stop_gradient((hidden, sentence))
    return _unflatten(lead, hidden, sentence)


class GloveTextEncoder(nn.Module):
  """Word vectors `[B, L, d]` (or a BiRNN head's `[B, L, 2H]`) and a sentence vector;
  `embed` gives the table's word vectors alone (e.g. for other word sequences of the
  same vocabulary)."""
  vocab_size: int
  dim: int
  embedding_init: Callable = nn.initializers.normal(1.0)
  trainable: bool = False
  head_kind: str = ""  # a key of HEADS
  head_hidden: int = 256
  head_layers: int = 1
  head_dropout: float = 0.0

  def setup(self):
    self.embedding = nn.Embed(self.vocab_size, self.dim, embedding_init=self.embedding_init)
    if HEADS[self.head_kind] is not None:
      self.head = BiRNN(self.head_hidden, self.head_layers, HEADS[self.head_kind],
                        self.head_dropout)

  def embed(self, tokens):
    """Token ids `[..., L]` -> word vectors `[..., L, d]` (no gradient unless
    `trainable`)."""
    x = self.embedding(tokens)
    return x if self.trainable else jax.lax.stop_gradient(x)

  def __call__(self, tokens, mask, *, train: bool = False):
    x = self.embed(tokens)
    if HEADS[self.head_kind] is None:
      return x, masked_mean(x, mask)
    lead, (x, mask) = tokens.shape[:-1], _flatten(x, mask)
    words, final = self.head(x, mask, train=train)
    return _unflatten(lead, words, final)


def _flatten(x, mask):
  """`x [..., L, *]`, `mask [..., L]` -> `[N, L, *]`, `[N, L]`."""
  length = mask.shape[-1]
  return x.reshape(-1, length, *x.shape[mask.ndim:]), mask.reshape(-1, length)


def _unflatten(lead, words, sentence):
  """`[N, L, H]`, `[N, H]` -> `[*lead, L, H]`, `[*lead, H]`."""
  return words.reshape(*lead, *words.shape[1:]), sentence.reshape(*lead, -1)


def default_config() -> ml_collections.ConfigDict:
  """Every `config.text` field, with defaults; model configs override some."""
  return ml_collections.ConfigDict({
      "encoder": "glove",
      "trainable": False,
      # bert
      "bert_dir": "",  # local transformers checkpoint: config.json, weights, vocab.txt
      "pooling": "cls",
      # glove
      "vectors": "glove",  # glove (from glove_file) | random (N(0, 1), glove_dim;
                           # with bert: random BERT-base weights) | export (shapes
                           # only, the values restored from a vmr_jax.export)
      "glove_file": "",  # e.g. /data/glove.840B.300d.txt
      "glove_dim": 300,  # only used with vectors = "random"
      "oov": "zero",  # or "random"
      "seed": 0,
      "head": "",  # "", "bilstm" or "bigru"
      "head_hidden": 256,
      "head_layers": 1,
      "head_dropout": 0.0,
  })


def create_bert(config, words: Sequence[str] | None = None,
                cache_dir: str | None = None) -> TextEncoder:
  del words, cache_dir  # BERT has its own vocabulary
  if config.pooling not in bert.POOLINGS:
    raise ValueError(f"text.pooling must be one of {bert.POOLINGS}, got {config.pooling!r}")
  if config.vectors == "random":
    bert_config, pretrained = bert.BertConfig(), None
  elif config.vectors == "export":
    bert_config, pretrained = bert.BertConfig.from_dir(config.bert_dir), None
  else:
    bert_config, params = bert.load_pretrained(config.bert_dir)
    pretrained = {"bert": params}
  module = BertTextEncoder(bert_config, config.pooling, config.trainable)
  return TextEncoder(module, "query_wordpiece", "query_wordpiece_mask", pretrained,
                     frozen=() if config.trainable else (("bert",),))


def create_glove(config, words: Sequence[str] | None = None,
                 cache_dir: str | None = None) -> TextEncoder:
  if words is None:
    raise ValueError("the glove encoder needs the dataset's vocabulary (words)")
  if config.head not in HEADS:
    raise ValueError(f"text.head must be one of {sorted(HEADS)}, got {config.head!r}")
  if config.vectors == "glove":
    if not config.glove_file:
      raise ValueError("text.glove_file is empty: name a GloVe text file (e.g. "
                       "--config.text.glove_file=/data/glove.840B.300d.txt), or ask for "
                       "random word vectors with --config.text.vectors=random")
    if not os.path.isfile(config.glove_file):
      raise FileNotFoundError(f"text.glove_file {config.glove_file!r} does not exist")
    vectors = glove.load_glove(config.glove_file, words, cache_dir, config.oov,
                               config.seed).vectors
    dim, init = vectors.shape[1], lambda *_: jnp.asarray(vectors)
  elif config.vectors in ("random", "export"):
    dim, init = config.glove_dim, nn.initializers.normal(1.0)
  else:
    raise ValueError(f"text.vectors must be 'glove', 'random' or 'export', got "
                     f"{config.vectors!r}")
  module = GloveTextEncoder(
      len(words), dim, embedding_init=init,
      trainable=config.trainable, head_kind=config.head, head_hidden=config.head_hidden,
      head_layers=config.head_layers, head_dropout=config.head_dropout)
  return TextEncoder(module, "query_tokens", "query_mask",
                     frozen=() if config.trainable else (("embedding",),))


ENCODERS: dict[str, Callable[..., TextEncoder]] = {"bert": create_bert, "glove": create_glove}


def create(config, words: Sequence[str] | None = None,
           cache_dir: str | None = None) -> TextEncoder:
  """The encoder named by `config.encoder` (a `config.text` ConfigDict)."""
  if config.encoder not in ENCODERS:
    raise ValueError(f"unknown text encoder {config.encoder!r}; one of {sorted(ENCODERS)}")
  return ENCODERS[config.encoder](config, words, cache_dir)
