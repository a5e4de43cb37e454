"""Batches of the batch contract built from arrays in memory, without TensorFlow:
what `vmr_jax.predictor` feeds the models.

The rules are the input pipeline's (`data_pipelines.input_pipeline`, whose tf.data
versions `tests/test_predictor.py` checks these against): clip features resampled to
`num_clips` by the same average pooling (`resample_clips`), words split by
`data_pipelines.words.split_words` and looked up in the export's vocabulary, BERT
WordPiece ids from its `vocab.txt`. Batches carry no strings; `gt_times` are zeros
(unknown).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from data_pipelines.words import PAD_ID, UNK_ID, WordVocab, split_words
from vmr_jax import distributed

Batch = dict[str, np.ndarray]


def resample_clips(features: np.ndarray, num_clips: int, short_videos: str = "stretch",
                   duration: float = 0.0, clip_seconds: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray]:
  """`[N, D]` -> `[num_clips, D]` float32 features and `[num_clips]` mask: clip i is
  the mean of input clips [b_i, max(b_{i+1}, b_i + 1)), b_i = round(i N / T), its
  start clamped to N - 1; with `short_videos = "pad"` a video of N < T clips keeps
  them, zero-padded and masked; with `clip_seconds` > 0 a video of `duration`
  seconds becomes `clip_count` clips by the same rule, zero-padded and masked."""
  features = np.asarray(features)
  if features.ndim != 2 or not len(features):
    raise ValueError(f"clip features must be [clips >= 1, D], got shape {features.shape}")
  n = len(features)
  if clip_seconds > 0:
    count = clip_count(duration, clip_seconds, num_clips)
    return _padded(_average_pool(features, count), num_clips)
  if short_videos == "pad" and n < num_clips:
    return _padded(features, num_clips)
  return _average_pool(features, num_clips), np.ones(num_clips, bool)


def _padded(clips: np.ndarray, num_clips: int) -> tuple[np.ndarray, np.ndarray]:
  """`[n, D]` clips (n <= num_clips) zero-padded to float32 `[num_clips, D]`, and their
  mask."""
  padded = np.zeros((num_clips, clips.shape[1]), np.float32)
  padded[:len(clips)] = clips
  return padded, np.arange(num_clips) < len(clips)


def clip_count(duration: float, clip_seconds: float, num_clips: int) -> int:
  """A video's clips at `clip_seconds` a clip: ceil(duration / clip_seconds) (a
  thousandth of a clip forgiven), in [1, num_clips]."""
  return int(np.clip(np.ceil(duration / clip_seconds - 1e-3), 1, num_clips))


def _average_pool(features: np.ndarray, num_clips: int) -> np.ndarray:
  n = len(features)
  bounds = np.round(np.arange(num_clips + 1, dtype=np.float64) * n / num_clips).astype(int)
  starts = np.minimum(bounds[:-1], n - 1)
  ends = np.maximum(bounds[1:], starts + 1)
  csum = np.concatenate([np.zeros((1, features.shape[1])),
                         np.cumsum(features.astype(np.float64), axis=0)])
  pooled = (csum[ends] - csum[starts]) / (ends - starts)[:, None]
  return pooled.astype(np.float32)


def shortened(text: str, width: int = 60) -> str:
  """`text`, cut to `width` characters with "..." where longer (for messages)."""
  return text if len(text) <= width else text[:width - 3] + "..."


class SentenceEncoder:
  """Sentences -> the query keys of a model's text encoder, `[S, L]` each.

  A call with `warn` says once, on stderr (`distributed.warn`), of a sentence the
  model reads only in part: one longer than `max_words` words (with a WordPiece
  vocabulary: `max_wordpiece` tokens), which is cut, and, without one, one none of
  whose words is in the vocabulary (its moments then mean nothing).
  """

  def __init__(self, words: Sequence[str], max_words: int, wordpiece_vocab: str = "",
               max_wordpiece: int = 32):
    self.vocab, self.max_words = WordVocab(words), max_words
    self.max_wordpiece = max_wordpiece
    self.wordpiece = None
    if wordpiece_vocab:
      from data_pipelines.wordpiece import WordPieceTokenizer
      self.wordpiece = WordPieceTokenizer(wordpiece_vocab)
    self._warned: set[str] = set()

  def __call__(self, sentences: Sequence[str], warn: bool = True) -> Batch:
    if not len(sentences):
      raise ValueError("no sentences")
    tokens = np.full((len(sentences), self.max_words), PAD_ID, np.int32)
    mask = np.zeros(tokens.shape, bool)
    for i, sentence in enumerate(sentences):
      words = split_words(sentence)
      if not words:
        raise ValueError(f"sentence {sentence!r} has no words")
      ids = self.vocab.ids(words[:self.max_words])
      tokens[i, :len(ids)], mask[i, :len(ids)] = ids, True
      if warn and self.wordpiece is None:
        if len(words) > self.max_words:
          self._warn(sentence, f"has {len(words)} words: the model reads its first "
                     f"{self.max_words} (data.max_words)")
        if (ids == UNK_ID).all():
          self._warn(sentence, "has no word of the model's vocabulary: its moments "
                     "mean nothing")
    out = {"query_tokens": tokens, "query_mask": mask}
    if self.wordpiece is not None:
      out["query_wordpiece"], out["query_wordpiece_mask"] = self.wordpiece.encode(
          list(sentences), self.max_wordpiece)
      for sentence, length in zip(sentences, self.wordpiece.lengths(sentences) if warn else ()):
        if length > self.max_wordpiece:
          self._warn(sentence, f"has {length} WordPiece tokens: the model reads its "
                     f"first {self.max_wordpiece} (data.max_wordpiece)")
    return out

  def _warn(self, sentence: str, what: str) -> None:
    message = f"sentence {shortened(sentence)!r} {what}"
    if message not in self._warned:
      self._warned.add(message)
      distributed.warn(message)


def video_level(clips: np.ndarray, masks: np.ndarray, durations: np.ndarray,
                queries: Batch, valid: np.ndarray) -> Batch:
  """`B` videos (`clips [B, T, D]`, `masks [B, T]`, `durations [B]`, `valid [B]` real
  rows) that each hold the same `S` queries (`queries`: `[S, L]` arrays) -> a
  video-level batch with Q = S."""
  b, s = len(clips), len(next(iter(queries.values())))
  batch = {k: np.broadcast_to(v[None], (b, *v.shape)).copy() for k, v in queries.items()}
  return batch | _videos(clips, masks, durations, valid) | {
      "gt_times": np.zeros((b, s, 2), np.float32),
      "query_index": np.broadcast_to(np.arange(s, dtype=np.int32), (b, s)).copy(),
      "query_valid": np.broadcast_to(valid[:, None], (b, s)).copy()}


def query_level(clips: np.ndarray, masks: np.ndarray, durations: np.ndarray,
                queries: Batch, valid: np.ndarray) -> Batch:
  """`B` (video, query) pairs: row b is video `clips[b]` with query row b of
  `queries` (`[B, L]` arrays) -> a query-level batch."""
  return dict(queries) | _videos(clips, masks, durations, valid) | {
      "gt_times": np.zeros((len(clips), 2), np.float32),
      "query_index": np.zeros(len(clips), np.int32)}


def _videos(clips, masks, durations, valid) -> Batch:
  return {"video_feats": np.asarray(clips, np.float32), "video_mask": np.asarray(masks, bool),
          "duration": np.asarray(durations, np.float32),
          "example_valid": np.asarray(valid, bool)}
