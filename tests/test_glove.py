import numpy as np
import pytest

from data_pipelines import synthetic_corpus
from vmr_jax.text import glove
from data_pipelines.words import PAD, UNK, WordVocab

from tests.conftest import TINY_SPEC


def write(path, lines):
  path.write_text("\n".join(lines) + "\n")
  return str(path)


def test_spaced_tokens_cased_fallback_and_oov(tmp_path):
  path = write(tmp_path / "glove.test.3d.txt", [
      "Door 9 9 9",            # cased, read first: used until the exact token comes
      "the 1 2 3",
      ". . . 4 5 6",           # a token with spaces
      "door 7 8 9",            # exact token wins over "Door"
      "Person 1 1 1",          # only a cased form exists
      "at name@domain.com 0.5 0.5 0.5",
  ])
  words = [PAD, UNK, "the", "door", "person", ". . .", "at name@domain.com", "absent"]
  m = glove.load_glove(path, words, progress=False)
  np.testing.assert_array_equal(m.vectors[2:7], [[1, 2, 3], [7, 8, 9], [1, 1, 1], [4, 5, 6],
                                                 [0.5, 0.5, 0.5]])
  np.testing.assert_array_equal(m.found, [0, 0, 1, 1, 1, 1, 1, 0])
  assert (m.vectors[[0, 1, 7]] == 0).all()  # padding, OOV row, absent word: zero
  assert m.coverage == pytest.approx(5 / 6)
  r = glove.load_glove(path, words, oov="random", seed=3, progress=False)
  assert (r.vectors[0] == 0).all() and (r.vectors[[1, 7]] != 0).all()
  np.testing.assert_array_equal(r.vectors[2:7], m.vectors[2:7])


def test_cache_is_used_and_keyed(tmp_path, monkeypatch):
  path = write(tmp_path / "g.txt", ["a 1 2", "b 3 4"])
  cache = tmp_path / "cache"
  first = glove.load_glove(path, [PAD, UNK, "a"], str(cache), progress=False)
  assert len(list(cache.iterdir())) == 1

  def no_read(*args, **kwargs):
    raise AssertionError("the cached matrix should have been used")
  monkeypatch.setattr(glove, "read_vectors", no_read)
  again = glove.load_glove(path, [PAD, UNK, "a"], str(cache), progress=False)
  np.testing.assert_array_equal(first.vectors, again.vectors)
  with pytest.raises(AssertionError, match="cached"):  # another vocabulary: another key
    glove.load_glove(path, [PAD, UNK, "b"], str(cache), progress=False)


def test_bad_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="nowhere.txt"):
    glove.load_glove(str(tmp_path / "nowhere.txt"), ["a"])
  path = write(tmp_path / "short.txt", ["a 1 2 3", "b 1 2"])
  with pytest.raises(ValueError, match="line 2 has 2 values, expected 3"):
    glove.load_glove(path, ["a", "b"], progress=False)
  path = write(tmp_path / "nan.txt", ["a 1 2", "b x y"])
  with pytest.raises(ValueError, match=r"line 2 \('b'\)"):
    glove.load_glove(path, ["a", "b"], progress=False)
  with pytest.raises(ValueError, match="oov"):
    glove.load_glove(path, ["a"], oov="mean")


def test_synthetic_glove_file_covers_the_corpus(tiny_release):
  words = WordVocab(synthetic_corpus.vocabulary()).words
  m = glove.load_glove(str(tiny_release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt"),
                       words, progress=False)
  assert m.vectors.shape == (len(words), TINY_SPEC.glove_dim)
  assert m.coverage == 1.0
