"""Moment retrieval in a video collection with an exported model, for all five models.

    predictor = vmr_jax.Predictor.load("WORKDIR/export")          # vmr_jax.export
    predictor.encode(features, durations)  # {video_id: [clips, D]}, {video_id: seconds}
    predictor.encode(features, durations, window=64)  # long videos: 64-clip windows
    predictor.localize("v1", ["the person opens the door"], top_n=5)
        # per sentence [k, 3] (start, end, score), seconds, best first
    predictor.search(["the person opens the door"], top_n=10)
        # per sentence [Moment(video_id, start, end, score), ...] over the collection

`encode` resamples every video's clips to the model's grid (`vmr_jax.predictor_inputs`, the
input pipeline's rules) and keeps, on the devices, what the model computes from the
video alone (`registry.Retrieval`), split over the mesh's `data` axis:
- CMHN: every candidate's binary code, packed into uint32 words, and its unit-norm
  real-valued code; a sentence's code is ranked against them by Hamming distance
  (popcount of the XOR), equal distances by the cosine, as evaluation ranks them
  (`cmhn.ranking_score`);
- FVMR: every map cell's common-space embedding phi_m(m); scores sigmoid(phi_m . phi_s);
- CLEAR: every candidate's moment embedding (the anchors among them); a sentence
  runs the tree walk (Algorithm 1, `clear.search = "pruned"`) or the exhaustive
  confidence MLP over them;
- HSCNet, FIAN: the resampled clip features only, and the whole model runs on each
  (video, sentence) pair: their video encoders attend to the words from their first
  cross-modal layer on (only a projection and the first self-attention layers see
  the video alone), so little of the work is the video's alone.

Ranking: models with a `Retrieval` score every candidate of every video on its
device shard, take the shard's top k, and merge the shards' lists
(`make_corpus_top_k`: the same list on any number of devices); the others rank each
video's candidates with the model's `decode`, the videos' batches split over the
devices. Then, as in evaluation, NMS (`eval.nms_threshold`) among the moments of
one video, top_n kept.
`encode(..., window=W, stride=S)` indexes each video of more than W clips as its
overlapping windows of W clips (`vmr_jax.long_videos`: every S clips, W // 2 by
default; each window a row of the collection, resampled to the model's grid on its
own); the windows' moments are shifted into the video's seconds and merged by the
same NMS within the video, so `localize` and `search` return moments of the whole
video, each video once. A window's candidates are ranked as a video's are (the
corpus search keeps max(eval.top_k, top_n) x (ceil(W / S) + 1) of the collection's
best, room for the overlapping windows' duplicates, where some video is split).
`window=None` (the default), or a W no video exceeds, is the single resampled pass.
`localize` ranks one video's moments the same way (for HSCNet the sentences of one
call are one paragraph, in the given order, as in training; `search` grounds each
sentence alone). Sentence batches of a shape seen before reuse the compiled
functions (`traces` counts their traces). Nothing is printed but a warning on stderr
for a sentence the model reads only in part (cut to `data.max_words`, or with no
word of its vocabulary: `predictor_inputs.SentenceEncoder`; `warn = False` silences
them). A process computes over its local devices (the mesh:
`sharding.make_mesh(jax.local_devices())` unless given).

Several processes (`vmr_jax.distributed`): each `encode`s its own part of the
collection (its videos' ids distinct from the others'); `encode` and `search` are
then collective (every process calls them, with the same sentences), and `search`
returns on every process what one process holding the whole collection, in process
order, returns: each process ranks its videos, the candidates travel to all
(`distributed.gather_json`), and the merge orders them as one process would (score,
then collection order: `merge_ranked`). `localize` stays local: a process localizes in
its own videos.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Mapping, Sequence

import jax
from jax.sharding import PartitionSpec
import jax.numpy as jnp
import numpy as np

from vmr_jax import (blockwise_top_k, distributed, evaluate, export, long_videos, metrics,
                     predictor_inputs, sharding)

PLACEHOLDER_SENTENCE = "a"  # the query of the batches that encode videos


@dataclasses.dataclass(frozen=True)
class Moment:
  """A moment of a video of the collection, in seconds."""
  video_id: str
  start: float
  end: float
  score: float


@dataclasses.dataclass
class _Collection:
  """The encoded videos: `R` rows (a video each, or with a window a video's windows:
  `row_videos`), padded to `rows` (a multiple of the devices)."""
  video_ids: list[str]  # the V videos, each once, in encode order
  row_videos: list[str]  # [R] the video of each real row
  offsets: np.ndarray  # [R] float64 seconds of its video at the row's first clip
  clips: np.ndarray  # [rows, T, D]
  masks: np.ndarray  # [rows, T]
  durations: np.ndarray  # [rows] seconds of each row (a window's own)
  overlap: int = 1  # the most rows one moment of a video may lie in
  entries: object = None  # Retrieval models: pytree of [rows, N, ...], data-sharded
  valid: jax.Array | None = None  # [rows, N] real candidates, data-sharded
  times: np.ndarray | None = None  # [rows, N, 2] candidate times, seconds of the row
  host_index: object = None  # Retrieval.host_index of entries, valid when searched on the host
  offset: int = 0  # several processes: the row of row_videos[0] in the whole collection
  all_ids: list[str] = dataclasses.field(default_factory=list)  # every process's rows' videos

  def __post_init__(self):
    self.rows_of: dict[str, list[int]] = {}  # video_id -> its rows, in order
    for i, video in enumerate(self.row_videos):
      self.rows_of.setdefault(video, []).append(i)


def make_corpus_top_k(score, config, mesh: jax.sharding.Mesh, k: int):
  """`(entries, valid, queries) -> (scores [S, k], flat candidate index [S, k])`: the
  k best candidates of a collection (`index = row * N + candidate`; rows and entries
  `[V, N, ...]`, `valid [V, N]`, split over `mesh`'s `data` axis), ties to the lower
  index, by `score` (`registry.Retrieval.score`). Each device ranks its shard of
  videos and keeps its k best (`blockwise_top_k`); the shards' lists are merged, so
  the result is the same on any number of devices. Pure, to be jit-compiled."""
  data = PartitionSpec(sharding.DATA_AXIS)

  def shard_top_k(entries, valid, queries):
    scores = score(entries, queries, config).astype(jnp.float32)  # [S, Vs, N]
    scores = jnp.where(valid[None], scores, -jnp.inf).reshape(len(scores), -1)
    best, index = blockwise_top_k.top_k(scores, min(k, scores.shape[1]))
    return best, index + jax.lax.axis_index(sharding.DATA_AXIS) * scores.shape[1]

  # check_vma=False: a model's score may hold loops (CLEAR's pruned search) whose
  # carries start as constants; every shard's computation is its own anyway.
  per_shard = jax.shard_map(shard_top_k, mesh=mesh, in_specs=(data, data, PartitionSpec()),
                            out_specs=(PartitionSpec(None, sharding.DATA_AXIS),) * 2,
                            check_vma=False)

  def top_k(entries, valid, queries):
    best, index = per_shard(entries, valid, queries)  # [S, devices * k']
    best, position = jax.lax.top_k(best, min(k, best.shape[1]))
    return best, jnp.take_along_axis(index, position, axis=1)
  return top_k


def merge_ranked(scores: np.ndarray, index: np.ndarray, k: int | None = None) -> np.ndarray:
  """Candidates gathered from several parts of a collection (processes, chunks), their
  `scores` and collection-wide `index` `[..., n]` concatenated in part order -> the
  positions `[..., min(k, n)]` (k None: all n) of the best, in order: higher score
  first (a non-finite one as -inf), ties to the lower index, then to the earlier
  position (a part's own order). That is how one process holding the whole collection
  ranks them (`make_corpus_top_k`; the Predictor's rows). With k, the k best are found
  in O(n) before they are sorted."""
  scores = np.where(np.isfinite(scores), scores, -np.inf)
  n = scores.shape[-1]
  position = np.broadcast_to(np.arange(n), scores.shape)
  if k is not None and k < n:
    kth = -np.partition(-scores, k - 1, axis=-1)[..., k - 1:k]  # the k-th best score
    # Every candidate above it (fewer than k), then of those equal to it the first
    # by (index, position).
    tied = np.where(scores == kth, index.astype(np.int64) * n + position,
                    np.iinfo(np.int64).max)
    position = np.argpartition(np.where(scores > kth, -1, tied), k - 1, axis=-1)[..., :k]
    scores, index = (np.take_along_axis(x, position, -1) for x in (scores, index))
  order = np.lexsort((position, index, -scores), axis=-1)
  return np.take_along_axis(position, order, -1)


SEARCH_BACKENDS = ("auto", "jax", "faiss")


class Predictor:
  """An exported model, a mesh and the collection `encode` was last given.

  `search_backend`: how `search` ranks a Retrieval model's collection: "jax"
  (`make_corpus_top_k` on the mesh), "faiss" (the model's `Retrieval.host_index`, for
  CMHN `faiss_index.HammingIndex`: the same results), or "auto": faiss where the model
  has a host index, faiss is installed and the mesh is CPUs, where it is the faster
  (docs/benchmarks.md), else JAX."""

  def __init__(self, exported: export.Exported, mesh: jax.sharding.Mesh | None = None,
               search_backend: str = "auto"):
    self.exported, self.config, self.spec = exported, exported.config, exported.spec
    self.mesh = mesh or sharding.make_mesh(jax.local_devices())
    self.host_search = self._host_search(search_backend)
    self.devices = self.mesh.devices.size
    data = self.config.data
    self.sentence_encoder = predictor_inputs.SentenceEncoder(
        exported.words, data.max_words, data.wordpiece_vocab, data.max_wordpiece)
    self.warn = True  # localize and search warn of sentences read in part (SentenceEncoder)
    self.query_level = data.batch_kind == "query"
    # Rows of a batch: eval.batch_size, or fewer for a smaller collection, rounded up
    # to a multiple of the devices (`encode` sets it).
    self.chunk = self.devices
    self.traces = collections.Counter()  # name -> times its function was traced
    self.variables = jax.device_put(exported.variables, sharding.replicated(self.mesh))
    self._collection: _Collection | None = None
    self._corpus_top_k = {}  # k -> jitted function
    self._build_functions()

  @classmethod
  def load(cls, export_dir: str, mesh: jax.sharding.Mesh | None = None,
           search_backend: str = "auto") -> "Predictor":
    return cls(export.load(export_dir), mesh, search_backend)

  @property
  def video_ids(self) -> list[str]:
    return list(self._require_collection().video_ids)

  def encode(self, features: Mapping[str, np.ndarray], durations: Mapping[str, float],
             window: int | None = None, stride: int | None = None) -> None:
    """Makes `features` ({video_id: [clips, D]}) of `durations` ({video_id: seconds})
    the collection searched, replacing the previous one. `window`: None, one
    resampled pass a video; W, each video of more than W clips indexed as its
    windows of W clips every `stride` clips (default W // 2; `long_videos.split`)."""
    if not features:
      raise ValueError("no videos to encode")
    if window is not None:
      window, stride = long_videos.check_window(window, stride)
    elif stride is not None:
      raise ValueError("a window stride needs a window")
    dim, data = self.exported.feature_dim, self.config.data
    video_ids = list(features)
    clips, masks, seconds, row_videos, offsets = [], [], [], [], []
    for video in video_ids:
      feats = np.asarray(features[video], np.float32)
      if feats.ndim != 2 or feats.shape[1] != dim or not len(feats):
        raise ValueError(f"video {video!r}: features must be [clips >= 1, {dim}], got "
                         f"{feats.shape}")
      if not np.isfinite(feats).all():
        raise ValueError(f"video {video!r}: features hold NaN or inf")
      if video not in durations:
        raise KeyError(f"video {video!r} has no duration")
      duration = float(durations[video])
      if not (np.isfinite(duration) and duration > 0):
        raise ValueError(f"video {video!r}: duration {duration} is not a positive number")
      pieces = ([long_videos.Piece(feats, 0, 0.0, duration)] if window is None
                else long_videos.split(feats, duration, window, stride))
      for piece in pieces:
        resampled, mask = predictor_inputs.resample_clips(
            piece.features, data.num_clips, data.short_videos, piece.duration,
            data.get("clip_seconds", 0.0))
        clips.append(resampled), masks.append(mask), seconds.append(piece.duration)
        row_videos.append(video), offsets.append(piece.offset)
    rows = self.devices * math.ceil(len(row_videos) / self.devices)
    self.chunk = self.devices * math.ceil(min(self.config.eval.batch_size, len(row_videos))
                                          / self.devices)
    pad = lambda x: np.concatenate([x, np.repeat(x[:1], rows - len(x), 0)])
    split = len(row_videos) > len(video_ids)
    collection = _Collection(video_ids, row_videos, np.asarray(offsets, np.float64),
                             pad(np.stack(clips)), pad(np.stack(masks)),
                             pad(np.asarray(seconds, np.float32)),
                             overlap=long_videos.overlap(window, stride) if split else 1)
    if self.spec.retrieval is not None:
      self._index(collection)
    parts = distributed.gather_json([video_ids, row_videos])
    collection.offset = sum(len(part[1]) for part in parts[:jax.process_index()])
    collection.all_ids = [video for part in parts for video in part[1]]
    every = [video for part in parts for video in part[0]]
    if len(set(every)) < len(every):
      raise ValueError("a video id is encoded by more than one process")
    self._collection = collection

  def localize(self, video_id: str, sentences: Sequence[str], top_n: int = 5
               ) -> list[np.ndarray]:
    """Per sentence, `[k <= top_n, 3]` (start, end, score) of `video_id`, best first."""
    collection = self._require_collection()
    if video_id not in collection.rows_of:
      raise KeyError(f"video {video_id!r} is not in the encoded collection")
    rows = collection.rows_of[video_id]
    queries = self.sentence_encoder(sentences, self.warn)
    if self.spec.retrieval is not None:
      query_entries, ranked = self._query_entries(queries), []
      for row in rows:  # each window's eval.top_k best
        best, index = self._row_top_k(collection.entries, collection.valid, query_entries,
                                      jnp.asarray(row, jnp.int32))
        best, index = np.asarray(best), np.asarray(index)
        ranked.append(np.concatenate([collection.times[row][index], best[..., None]], -1))
    else:
      ranked = list(self._rank_full(np.array(rows), queries, paragraph=True))
    # [S, sum of K, 3]: the windows' moments in the video's seconds, in row order
    ranked = np.concatenate([long_videos.to_video_time(r, collection.offsets[row])
                             for r, row in zip(ranked, rows)], axis=1)
    return [self._nms(moments, top_n) for moments in ranked]

  def search(self, sentences: Sequence[str], top_n: int = 10) -> list[list[Moment]]:
    """Per sentence, its `top_n` moments over the whole collection, best first
    (fewer where NMS leaves fewer of the candidates ranked, `eval.top_k` a video (0: all) or,
    with a `Retrieval`, max(eval.top_k, top_n) in all)."""
    collection = self._require_collection()
    queries = self.sentence_encoder(sentences, self.warn)
    if self.spec.retrieval is not None:
      k = max(self.config.eval.top_k if self.config.eval.top_k > 0  # 0: a video's all
              else collection.times.shape[1], top_n) * collection.overlap
      query_entries = self._query_entries(queries)
      if collection.host_index is not None:
        best, index = collection.host_index.top_k(jax.device_get(query_entries), k)
      else:
        best, index = self.corpus_top_k(k)(collection.entries, collection.valid,
                                           query_entries)
      best, index = np.asarray(best), np.asarray(index)
      candidates = collection.times.shape[1]
      rows, cells = index // candidates, index % candidates
      ranked = [(rows[s], long_videos.to_video_time(
                    np.concatenate([collection.times[rows[s], cells[s]], best[s, :, None]], -1),
                    self._row_offsets(rows[s])[:, None]))
                for s in range(len(sentences))]
      if jax.process_count() > 1:  # every process's k best, then the k best of all
        ranked = [(rows[:k], moments[:k]) for rows, moments in self._gather(ranked)]
    else:
      ranked = []
      for s in range(len(sentences)):
        one = {k: v[s:s + 1] for k, v in queries.items()}
        moments = self._rank_full(np.arange(len(collection.row_videos)), one)[:, 0]
        per_video = [long_videos.to_video_time(self._nms(m, top_n), collection.offsets[r])
                     for r, m in enumerate(moments)]  # each row's (window's) top_n
        rows = np.concatenate([np.full(len(m), r) for r, m in enumerate(per_video)])
        ranked.append((rows, np.concatenate(per_video)))
      if jax.process_count() > 1:
        ranked = self._gather(ranked)
    return [self._merge(rows, moments, top_n) for rows, moments in ranked]

  def corpus_top_k(self, k: int):
    """`make_corpus_top_k` of this model's score and mesh, compiled once per k."""
    if k not in self._corpus_top_k:
      top_k = make_corpus_top_k(self.spec.retrieval.score, self.config, self.mesh, k)

      def counted(*args):
        self.traces["corpus_top_k"] += 1
        return top_k(*args)
      self._corpus_top_k[k] = jax.jit(counted)
    return self._corpus_top_k[k]

  # Internals.

  def _host_search(self, backend: str) -> bool:
    """Whether `search` ranks on the host (`search_backend`, class docstring)."""
    if backend not in SEARCH_BACKENDS:
      raise ValueError(f"search_backend must be one of {SEARCH_BACKENDS}, got {backend!r}")
    retrieval = self.spec.retrieval
    host = retrieval is not None and retrieval.host_index is not None
    if backend == "faiss" and not host:
      raise ValueError(f"search_backend='faiss': {self.config.model} has no faiss index")
    if backend == "faiss" and not retrieval.host_available():
      raise ValueError("search_backend='faiss' needs faiss: pip install faiss-cpu")
    cpus = all(device.platform == "cpu" for device in self.mesh.devices.flat)
    return backend == "faiss" or (backend == "auto" and host and cpus
                                  and retrieval.host_available())

  def _build_functions(self):
    config, model = self.config, self.exported.model
    forward = evaluate.make_forward_fn(model, config)
    replicated, data = sharding.replicated(self.mesh), sharding.data_sharded(self.mesh)
    predict = evaluate.make_predict_fn(model, self.spec, config)

    def rank(variables, batch):
      self.traces["rank"] += 1
      return predict(variables, batch)[0]

    self._rank = jax.jit(rank, in_shardings=(replicated, data), out_shardings=data)
    retrieval = self.spec.retrieval
    if retrieval is None:
      return

    def moments(variables, batch):
      self.traces["moments"] += 1
      return retrieval.moments(forward(variables, batch), batch, config)

    def queries(variables, batch):
      self.traces["queries"] += 1
      return retrieval.queries(forward(variables, batch), config)

    def row_top_k(entries, valid, query_entries, row):
      """The `eval.top_k` best candidates of the collection's `row` for each query."""
      self.traces["row_top_k"] += 1
      one, valid = jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, row, 1),
                                (entries, valid))
      scores = retrieval.score(one, query_entries, config)[:, 0].astype(jnp.float32)
      scores = jnp.where(valid, scores, -jnp.inf)  # [S, N]
      k = config.eval.top_k if 0 < config.eval.top_k < scores.shape[-1] else scores.shape[-1]
      return jax.lax.top_k(scores, k)  # eval.top_k = 0: every candidate

    self._moments = jax.jit(moments, in_shardings=(replicated, data),
                            out_shardings=data)
    self._queries = jax.jit(queries)
    self._row_top_k = jax.jit(row_top_k)

  def _index(self, collection: _Collection) -> None:
    """The Retrieval models' video side of every video, data-sharded."""
    placeholder = self.sentence_encoder([PLACEHOLDER_SENTENCE], warn=False)
    rows = len(collection.clips)
    parts = []
    for begin in range(0, rows, self.chunk):
      index = np.arange(begin, begin + self.chunk)
      picked = np.where(index < rows, index, 0)
      batch = predictor_inputs.video_level(collection.clips[picked], collection.masks[picked],
                                  collection.durations[picked], placeholder,
                                  picked < len(collection.row_videos))
      parts.append(jax.tree.map(lambda x: np.asarray(x)[index < rows],
                                jax.device_get(self._moments(self.variables, self._sharded(batch)))))
    entries, times, valid = jax.tree.map(lambda *x: np.concatenate(x), *parts)
    valid &= (np.arange(rows) < len(collection.row_videos))[:, None]
    data = sharding.data_sharded(self.mesh)
    collection.entries = jax.device_put(entries, data)
    collection.valid, collection.times = jax.device_put(valid, data), times
    if self.host_search:
      collection.host_index = self.spec.retrieval.host_index(entries, valid)

  def _query_entries(self, queries: predictor_inputs.Batch):
    """A Retrieval model's query side of `[S, L]` sentences."""
    t, d = self.config.data.num_clips, self.exported.feature_dim
    batch = predictor_inputs.video_level(np.zeros((1, t, d), np.float32), np.ones((1, t), bool),
                                np.ones(1, np.float32), queries, np.ones(1, bool))
    return self._queries(self.variables, jax.device_put(batch, sharding.replicated(self.mesh)))

  def _rank_full(self, rows: np.ndarray, queries: predictor_inputs.Batch, paragraph: bool = False
                 ) -> np.ndarray:
    """The model's ranked moments `[len(rows), S, K, 3]` of the collection's `rows`
    for every one of the `S` sentences (`queries [S, L]`); video-level models see
    all S as one video's queries (`paragraph`) or S = 1."""
    collection = self._collection
    num = len(next(iter(queries.values())))
    if self.query_level:  # one (video, sentence) pair a batch row
      pair_rows, pair_queries = np.repeat(rows, num), np.tile(np.arange(num), len(rows))
    else:
      assert paragraph or num == 1
      pair_rows, pair_queries = rows, None
    size = self.chunk if len(pair_rows) > self.devices else self.devices
    out = []
    for begin in range(0, len(pair_rows), size):
      index = np.arange(begin, begin + size)
      valid = index < len(pair_rows)
      picked = pair_rows[np.where(valid, index, 0)]
      videos = (collection.clips[picked], collection.masks[picked],
                collection.durations[picked])
      if self.query_level:
        one = {k: v[pair_queries[np.where(valid, index, 0)]] for k, v in queries.items()}
        batch = predictor_inputs.query_level(*videos, one, valid)
      else:
        batch = predictor_inputs.video_level(*videos, queries, valid)
      out.append(np.asarray(jax.device_get(
          self._rank(self.variables, self._sharded(batch))))[valid])
    ranked = np.concatenate(out)
    return ranked.reshape(len(rows), num, *ranked.shape[-2:])

  def _gather(self, ranked):
    """Per sentence, every process's ranked (row, moment) candidates -> all of them,
    rows of the whole collection, ordered as one process ranks them: by score, then
    by row, then by process and a process's own order (`merge_ranked`)."""
    offset = self._collection.offset
    local = [[(rows + offset).tolist(), np.asarray(moments).tolist()]
             for rows, moments in ranked]
    merged = []
    for s, parts in enumerate(zip(*distributed.gather_json(local))):
      rows = np.concatenate([np.asarray(part[0], np.int64) for part in parts])
      moments = np.concatenate([np.asarray(part[1], np.float64).reshape(-1, 3)
                                for part in parts])
      order = merge_ranked(moments[:, 2], rows)
      merged.append((rows[order], moments[order]))
    return merged

  def _sharded(self, batch: predictor_inputs.Batch) -> dict[str, jax.Array]:
    """A host batch split over the mesh's `data` axis (explicitly: with several
    processes jit takes no numpy input for a sharded argument)."""
    return jax.device_put(batch, sharding.data_sharded(self.mesh))

  def _nms(self, moments: np.ndarray, top_n: int) -> np.ndarray:
    return metrics.nms(moments[np.isfinite(moments[:, 2])], self.config.eval.nms_threshold,
                       top_n)

  def _row_offsets(self, rows: np.ndarray) -> np.ndarray:
    """`[n]` seconds of their videos at the first clip of local `rows` (padding rows: 0)."""
    offsets = self._collection.offsets
    return np.where(rows < len(offsets), offsets[np.minimum(rows, len(offsets) - 1)], 0.0)

  def _merge(self, rows: np.ndarray, moments: np.ndarray, top_n: int) -> list[Moment]:
    """Ranked (row, moment in its video's seconds) pairs -> the top_n after NMS
    within each video (across its windows' rows)."""
    order = np.argsort(-moments[:, 2], kind="stable")
    kept: dict[str, list[np.ndarray]] = {}
    out = []
    for i in order:
      row, moment = int(rows[i]), moments[i]
      if not np.isfinite(moment[2]):
        break
      video = self._collection.all_ids[row]
      same = kept.setdefault(video, [])
      if same and metrics.temporal_iou(np.array(same)[:, :2], moment[:2]).max() > \
          self.config.eval.nms_threshold:
        continue
      same.append(moment)
      out.append(Moment(video, float(moment[0]),
                        float(moment[1]), float(moment[2])))
      if len(out) == top_n:
        break
    return out

  def _require_collection(self) -> _Collection:
    if self._collection is None:
      raise RuntimeError("no collection: call encode(features, durations) first")
    return self._collection
