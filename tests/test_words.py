import numpy as np
import pytest

from data_pipelines import words


def test_split_words():
  assert words.split_words("A person opens the door.") == ["a", "person", "opens", "the",
                                                            "door"]
  assert words.split_words("The person's hand, then 2 cups!") == [
      "the", "person's", "hand", "then", "2", "cups"]
  assert words.split_words(" ?! ") == []


def test_vocab_order_and_ids():
  vocab = words.WordVocab.from_counts({"the": 5, "door": 2, "a": 2, "rare": 1}, min_count=2)
  assert vocab.words == [words.PAD, words.UNK, "the", "a", "door"]
  np.testing.assert_array_equal(vocab.ids(["the", "rare", "door"]), [2, words.UNK_ID, 4])
  assert len(vocab) == 5
  with pytest.raises(ValueError, match="repeated"):
    words.WordVocab(["x", "x"])


def test_count_words():
  assert words.count_words(["a b", "B c."]) == {"a": 1, "b": 2, "c": 1}
