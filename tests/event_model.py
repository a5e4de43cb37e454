"""A tiny test model that finds an event by its direction: span (i, j) of the clip grid
scores the SUM over its clips of `clip . u(query)`, u(query) = W_video^T W_query
sentence (no video bias), so the best span of a video whose event clips point along
u and whose other clips point against it is the event itself, however short (a mean,
as tests/toy_model.py scores, ties every span inside an event).

Not registered on import (the per-model tests would run it): `registered()` adds it
to the registry for a `with` block; a subprocess adds it by `register()`.
Random weights are enough: `direction(exported, sentence)` reads u off the export.
"""

import contextlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vmr_jax import registry
from vmr_jax.configs import default
from vmr_jax.layers import moment_map
from vmr_jax.models import common
from tests import span_scorer

NAME = "event"


def get_config(arg: str = ""):
  del arg
  config = default.get_config()
  default.use_synthetic(config)
  config.model = NAME
  config.data.batch_kind = "video"
  config.data.num_clips = 16
  config.data.max_queries = 4
  config.data.eval_max_queries = 4
  config.event = ml_collections.ConfigDict({"hidden": 8, "pooling": "sum", "bias": False})
  default.shrink(config, "small", "", {})  # random word vectors
  config.eval.top_k = 0  # every span: the evaluation's default
  return config


def create(config, info: registry.DataInfo) -> registry.Model:
  return common.with_text_encoder(config, info, lambda encoder, tokens, mask: span_scorer.SpanScorer(
      config.event, encoder, tokens, mask))


def loss(outputs, batch, config):
  del batch, config
  value = jnp.mean(outputs["logits"] ** 2)  # never trained: a loss for the interface
  return value, {"loss": value}


SPEC = registry.ModelSpec(create=create, loss=loss, decode=span_scorer.decode,
                          data={"batch_kind": "video"})


def register() -> None:
  registry.register(NAME, model=__name__, config=__name__)


@contextlib.contextmanager
def registered():
  """The registry with this model, for the block."""
  with __import__("pytest").MonkeyPatch.context() as patch:
    patch.setitem(registry._ENTRIES, NAME,  # pylint: disable=protected-access
                  registry.Entry(__name__, __name__))
    yield


def direction(exported, sentence: str) -> np.ndarray:
  """`[D]` u(sentence): a clip x adds `x . u` to the score of every span holding it."""
  from vmr_jax import predictor_inputs
  from data_pipelines.words import split_words, WordVocab
  dim, num = exported.feature_dim, exported.config.data.num_clips
  assert dim <= num, (dim, num)
  clips = np.zeros((1, num, dim), np.float32)
  clips[0, np.arange(dim), np.arange(dim)] = 1.0  # clip i = e_i
  vocab = WordVocab(exported.words)
  ids = vocab.ids(split_words(sentence)[:exported.config.data.max_words])
  tokens = np.zeros((1, exported.config.data.max_words), np.int32)
  tokens[0, :len(ids)] = ids
  batch = predictor_inputs.video_level(
      clips, np.ones((1, num), bool), np.ones(1, np.float32),
      {"query_tokens": tokens, "query_mask": tokens > 0}, np.ones(1, bool))
  logits = jax.jit(exported.model.module.apply)(exported.variables, batch)["logits"]
  spans = moment_map.dense_spans(num)
  single = [int(np.flatnonzero((spans[:, 0] == i) & (spans[:, 1] == i))[0]) for i in range(dim)]
  return np.asarray(logits)[0, 0, single].astype(np.float64)


def write_sources(out_dir: str, videos: int = 20, seed: int = 0) -> None:
  """`out_dir/export` (random weights), `out_dir/features/<vid>.npz` (`videos`
  videos of 40 to 80 clips of 2 s, noise pointing against its query's direction
  with an event of 4 to 12 clips along it) and `out_dir/val.jsonl` (each video's
  query and event window): events for `vmr_jax.tools.long_video_recall`."""
  import json
  import os
  from vmr_jax import export, train
  from vmr_jax.tools.random_batch import random_batch
  from tests.models import FEATURE_DIM, VOCAB
  from tests.test_predictor import WORDS
  with registered():
    config = get_config()
    built = registry.for_config(config).create(config, registry.DataInfo(FEATURE_DIM, WORDS,
                                                                         None))
    batch = random_batch(config, FEATURE_DIM, VOCAB, np.random.default_rng(seed))
    variables = jax.tree.map(np.asarray, train.init_variables(built, batch, config))
    export.write(os.path.join(out_dir, "export"), config, variables, WORDS, FEATURE_DIM, 0)
    exported = export.load(os.path.join(out_dir, "export"))
  rng = np.random.default_rng(seed)
  os.makedirs(os.path.join(out_dir, "features"), exist_ok=True)
  lines = []
  for i in range(videos):
    sentence = " ".join(f"w{w}" for w in rng.choice(np.arange(2, VOCAB - 2), 3, replace=False))
    u = direction(exported, sentence)
    along = u / np.linalg.norm(u)
    clips, length = int(rng.integers(40, 81)), int(rng.integers(4, 13))
    start = int(rng.integers(0, clips - length + 1))
    feats = rng.normal(size=(clips, FEATURE_DIM)) - 0.5 * along
    feats[start:start + length] += 2.5 * along
    np.savez(os.path.join(out_dir, "features", f"v{i}.npz"), features=feats.astype(np.float32))
    lines.append({"qid": i, "query": sentence, "vid": f"v{i}", "duration": 2.0 * clips,
                  "relevant_windows": [[2.0 * start, 2.0 * (start + length)]]})
  with open(os.path.join(out_dir, "val.jsonl"), "w") as f:
    f.writelines(json.dumps(line) + "\n" for line in lines)


if __name__ == "__main__":  # python -m tests.event_model OUT_DIR [VIDEOS]
  import sys
  write_sources(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
