"""BERT WordPiece tokenization from a local `vocab.txt` (transformers' fast tokenizer).

Nothing is downloaded: the vocab file must exist on disk.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np


class WordPieceTokenizer:
  """`[CLS] pieces [SEP]` ids, padded with [PAD] to a fixed length."""

  def __init__(self, vocab_file: str, lowercase: bool = True):
    if not os.path.isfile(vocab_file):
      raise FileNotFoundError(f"WordPiece vocab file not found: {vocab_file}")
    from transformers import BertTokenizerFast  # imported here: slow to import
    self.vocab_file = vocab_file
    self._tokenizer = BertTokenizerFast(vocab=vocab_file, do_lower_case=lowercase)
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
               if t not in self._tokenizer.get_vocab()]
    if missing:
      raise ValueError(f"{vocab_file}: missing special tokens {missing}")
    self.pad_id = self._tokenizer.pad_token_id

  @classmethod
  def from_bert_dir(cls, directory: str, vocab_size: int | None = None
                    ) -> "WordPieceTokenizer":
    """The tokenizer of a BERT checkpoint directory (`vocab.txt`, and
    `tokenizer_config.json`'s `do_lower_case` if present). `vocab_size`: the model's,
    which must cover every token id."""
    vocab_file = os.path.join(directory, "vocab.txt")
    if not os.path.isfile(vocab_file):
      raise FileNotFoundError(f"BERT checkpoint {directory}: vocab.txt is missing")
    lowercase = True
    config_file = os.path.join(directory, "tokenizer_config.json")
    if os.path.isfile(config_file):
      with open(config_file) as f:
        lowercase = json.load(f).get("do_lower_case", True)
    tokenizer = cls(vocab_file, lowercase)
    if vocab_size is not None and len(tokenizer) > vocab_size:
      raise ValueError(f"{vocab_file} has {len(tokenizer)} tokens but the model's "
                       f"config.json has vocab_size {vocab_size}")
    return tokenizer

  def __len__(self) -> int:
    return len(self._tokenizer)

  def encode(self, sentences: Sequence[str], max_length: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """-> ids `[N, max_length]` int32 and mask `[N, max_length]` bool (truncating)."""
    out = self._tokenizer(list(sentences), max_length=max_length, truncation=True,
                          padding="max_length", return_attention_mask=True)
    ids = np.asarray(out["input_ids"], dtype=np.int32).reshape(-1, max_length)
    mask = np.asarray(out["attention_mask"], dtype=bool).reshape(-1, max_length)
    return ids, mask

  def lengths(self, sentences: Sequence[str]) -> list[int]:
    """Each sentence's token count `encode` would give untruncated ([CLS], [SEP]
    included)."""
    return [len(ids) for ids in self._tokenizer(list(sentences))["input_ids"]]
