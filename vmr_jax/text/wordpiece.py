"""BERT WordPiece tokenization from a local `vocab.txt` (transformers' fast tokenizer).

Nothing is downloaded: the vocab file must exist on disk.
"""

from __future__ import annotations

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
