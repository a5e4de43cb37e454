"""GloVe vectors for a dataset's vocabulary, read once from the text file and cached.

File format (`glove.840B.300d.txt` and friends): one `token v_1 ... v_d` per line,
separated by single spaces. Some tokens contain spaces themselves (". . .",
"at name@domain.com" in the 840B file), so a line is read as: the last d fields are
the vector, everything before them is the token. d comes from the first line.

Matching: vocabulary words are lower-case (`split_words`). A line whose token equals
a word gives its vector; a cased token ("Door") gives its vector to the lower-case
word only while no exact match has been read, so the exact token wins in any order.

Rows of the returned `[V, d]` matrix follow the `WordVocab`: row 0 (padding) is
zero; the out-of-vocabulary row 1 and every word absent from the file get the `oov`
rule: `"zero"` (2D-TAN's choice: unknown words contribute nothing) or `"random"`
(normal with the found vectors' std, seeded, so a trainable embedding can learn them).

The file is streamed line by line with a progress bar; memory holds only the
vocabulary's vectors. The matrix is cached as `.npy` in `cache_dir` (the dataset's
folder) under a key of the file's name, size and modification time, the vocabulary
and the rule, so a 5 GB file is read once per vocabulary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Sequence

import numpy as np
from tqdm import tqdm

from data_pipelines.words import PAD, UNK

OOV_RULES = ("zero", "random")


@dataclasses.dataclass(frozen=True)
class GloveMatrix:
  vectors: np.ndarray  # [V, d] float32, rows in vocabulary order
  found: np.ndarray  # [V] bool: the row came from the file

  @property
  def coverage(self) -> float:
    """Share of real words (not padding/OOV rows) found in the file."""
    words = self.found[2:]
    return float(words.mean()) if len(words) else 0.0


def load_glove(path: str, words: Sequence[str], cache_dir: str | None = None,
               oov: str = "zero", seed: int = 0, progress: bool = True) -> GloveMatrix:
  """Vectors for `words` (a `WordVocab.words` list), from the cache or the file."""
  if oov not in OOV_RULES:
    raise ValueError(f"oov must be one of {OOV_RULES}, got {oov!r}")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"GloVe file not found: {path}")
  words = list(words)
  cache = _cache_path(path, words, oov, seed, cache_dir) if cache_dir else None
  if cache and os.path.isfile(cache):
    with np.load(cache) as saved:
      return GloveMatrix(saved["vectors"], saved["found"])
  vectors, found = read_vectors(path, words, progress)
  special = np.isin(np.array(words, dtype=object), [PAD, UNK])
  missing = ~found & ~special
  if words and words[0] == PAD:
    vectors[0] = 0.0
  if oov == "random":
    std = float(vectors[found].std()) if found.any() else 1.0
    rng = np.random.default_rng(seed)
    fill = missing | (np.array(words, dtype=object) == UNK)
    vectors[fill] = rng.normal(scale=std, size=(int(fill.sum()), vectors.shape[1]))
  result = GloveMatrix(vectors.astype(np.float32), found)
  if cache:
    os.makedirs(cache_dir, exist_ok=True)
    tmp = cache + ".tmp.npz"
    np.savez(tmp, vectors=result.vectors, found=result.found)
    os.replace(tmp, cache)  # atomic: a crash leaves no half-written cache
  return result


def read_vectors(path: str, words: Sequence[str], progress: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Streams the file once -> `[V, d]` vectors (zeros where absent), `[V]` found."""
  index = {w: i for i, w in enumerate(words)}
  vectors, found = None, np.zeros(len(words), dtype=bool)
  exact = np.zeros(len(words), dtype=bool)
  dim = None
  with open(path, "rb") as f, tqdm(total=os.path.getsize(path), unit="B", unit_scale=True,
                                    desc=f"reading {os.path.basename(path)}",
                                    disable=not progress) as bar:
    for line_number, raw in enumerate(f, start=1):
      bar.update(len(raw))
      fields = raw.decode("utf-8", errors="replace").rstrip("\n").rstrip("\r").split(" ")
      if dim is None:
        dim = len(fields) - 1
        if dim < 1:
          raise ValueError(f"{path}: line 1 has no vector")
        vectors = np.zeros((len(words), dim), dtype=np.float32)
      if len(fields) <= dim:
        raise ValueError(f"{path}: line {line_number} has {len(fields) - 1} values, "
                         f"expected {dim} (from line 1)")
      token = " ".join(fields[:-dim])
      i, is_exact = index.get(token), True
      if i is None:
        i, is_exact = index.get(token.lower()), False
      if i is None or exact[i] or (found[i] and not is_exact):
        continue
      try:
        vectors[i] = np.array(fields[-dim:], dtype=np.float32)
      except ValueError as e:
        raise ValueError(f"{path}: line {line_number} ({token!r}): {e}") from e
      found[i], exact[i] = True, is_exact
  if vectors is None:
    raise ValueError(f"{path}: empty file")
  return vectors, found


def _cache_path(path: str, words: Sequence[str], oov: str, seed: int, cache_dir: str) -> str:
  stat = os.stat(path)
  key = json.dumps([os.path.basename(path), stat.st_size, int(stat.st_mtime), oov, seed,
                    list(words)])
  digest = hashlib.sha1(key.encode()).hexdigest()[:16]
  stem = os.path.basename(path).removesuffix(".txt")
  return os.path.join(cache_dir, f"{stem}.{digest}.npz")
