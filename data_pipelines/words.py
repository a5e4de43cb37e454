"""Word splitting and the word vocabulary used for GloVe-style embeddings.

The one rule that turns a sentence into words, used both when a dataset is built
(the stored `words` of each query) and when text is typed in at prediction time:
lower-case, then keep runs of letters and digits, with an apostrophe suffix kept
attached ("person's" stays one word). Punctuation is dropped. This differs from
2D-TAN's `sentence.split()`, which keeps "shelf." as an out-of-vocabulary token.
"""

from __future__ import annotations

import collections
import re
from typing import Iterable, Mapping, Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

PAD_ID = 0
UNK_ID = 1
PAD = "<pad>"
UNK = "<unk>"


def split_words(sentence: str) -> list[str]:
  """`"A person opens the door."` -> `["a", "person", "opens", "the", "door"]`."""
  return _WORD.findall(sentence.lower())


class WordVocab:
  """Word <-> id. Id 0 is padding, id 1 is out-of-vocabulary; words follow."""

  def __init__(self, words: Sequence[str]):
    words = list(words)
    if words[:2] != [PAD, UNK]:
      words = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
    if len(set(words)) != len(words):
      raise ValueError("vocabulary has repeated words")
    self.words = words
    self._ids = {w: i for i, w in enumerate(words)}

  @classmethod
  def from_counts(cls, counts: Mapping[str, int], min_count: int = 1) -> "WordVocab":
    """Words seen at least `min_count` times, most frequent first, ties by spelling."""
    kept = [w for w, c in counts.items() if c >= min_count]
    return cls(sorted(kept, key=lambda w: (-counts[w], w)))

  def __len__(self) -> int:
    return len(self.words)

  def ids(self, words: Iterable[str]) -> np.ndarray:
    """`[L]` int32 ids; unknown words map to `UNK_ID`."""
    return np.array([self._ids.get(w, UNK_ID) for w in words], dtype=np.int32)


def count_words(sentences: Iterable[str]) -> dict[str, int]:
  """Word counts over sentences, split by `split_words`."""
  counts = collections.Counter()
  for sentence in sentences:
    counts.update(split_words(sentence))
  return dict(counts)
