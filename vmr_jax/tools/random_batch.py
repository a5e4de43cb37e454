"""Random training batches of a config's shapes (benchmarks and tests)."""

from __future__ import annotations

import numpy as np

from data_pipelines.data_config import PER_QUERY_KEYS
from vmr_jax.text.bert import BertConfig


def random_batch(config, feature_dim: int, vocab: int, rng: np.random.Generator):
  """A training batch of the config's shapes, valid everywhere, with random semantic
  role trees (`config.data`'s limits), BERT WordPiece ids where `config.text` is BERT
  (`data.max_wordpiece` of them) and an epoch past any warm-up: video-level, or
  query-level (`data.batch_kind`: each video's first query) with no Q axis."""
  b, t = config.train.batch_size, config.data.num_clips
  q, w = config.data.max_queries, config.data.max_words
  duration = rng.uniform(30, 120, b).astype(np.float32)
  start = rng.uniform(0, 0.5, (b, q)) * duration[:, None]
  end = start + rng.uniform(0.1, 0.5, (b, q)) * duration[:, None]
  lengths = rng.integers(4, w + 1, (b, q))
  verbs, nouns = config.data.max_verbs, config.data.max_nouns

  def nodes(limit):
    """`[b, q, limit, W]` word ids of 1..limit nodes of 1..3 words, 0-padded."""
    count = rng.integers(1, limit + 1, (b, q, 1, 1))
    words = rng.integers(1, 4, (b, q, limit, 1))
    valid = (np.arange(limit)[:, None] < count) & (np.arange(config.data.max_node_words) < words)
    return np.where(valid, rng.integers(2, vocab, valid.shape), 0).astype(np.int32)

  verb_tokens, noun_tokens = nodes(verbs), nodes(nouns)
  edges = ((rng.random((b, q, verbs, nouns)) < 0.5) & (verb_tokens[..., :, None, 0] > 0)
           & (noun_tokens[..., None, :, 0] > 0))
  batch = {
      "video_feats": rng.normal(size=(b, t, feature_dim)).astype(np.float32),
      "video_mask": np.ones((b, t), bool),
      "duration": duration,
      "query_tokens": rng.integers(2, vocab, (b, q, w)).astype(np.int32),
      "query_mask": np.arange(w)[None, None] < lengths[..., None],
      "verb_tokens": verb_tokens,
      "noun_tokens": noun_tokens,
      "role_edges": edges,
      "gt_times": np.stack([start, end], -1).astype(np.float32),
      "query_valid": np.ones((b, q), bool),
      "example_valid": np.ones(b, bool),
      "epoch": np.full(b, 10 ** 6, np.int32),
  }
  if config.text.encoder == "bert":  # WordPiece ids of BERT-base's vocabulary
    pieces = config.data.max_wordpiece
    batch["query_wordpiece"] = rng.integers(1000, BertConfig().vocab_size,
                                            (b, q, pieces)).astype(np.int32)
    batch["query_wordpiece_mask"] = (np.arange(pieces)
                                     < rng.integers(4, pieces + 1, (b, q, 1)))
  if config.data.batch_kind == "query":
    batch = {k: v[:, 0] if k in PER_QUERY_KEYS else v for k, v in batch.items()
             if k != "query_valid"}
  return batch
