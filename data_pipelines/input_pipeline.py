"""tf.data input pipeline: built TFDS splits -> numpy batches of the batch contract.

Per video (one TFDS example):
- Features `[N, D]` become `[T, D]`, T = `num_clips`, by average pooling over equal
  spans: boundary b_i = round(i * N / T) (i = 0..T), clip i is the mean of input clips
  [b_i, max(b_{i+1}, b_i + 1)), its start clamped to N - 1. Every input clip is used
  once when N >= T (2D-TAN's `average_to_fixed_length` rounds the same way but drops
  the last input clip). When N < T, `short_videos="stretch"` (the papers' choice)
  repeats clips by the same rule; `"pad"` keeps the N clips, zero-pads to T and masks
  the rest (`video_mask`), so clip i then spans [i, i + 1) * duration / N.
  `clip_seconds` > 0 (CMHN's released data: 1 clip per second) instead sets each
  video's length from its duration: n = ceil(duration / clip_seconds) clips (a
  thousandth of a clip forgiven, at most T), pooled (or repeated) from the N stored
  ones by the rule above with n for T, zero-padded to T and masked; clip i spans
  [i, i + 1) * duration / n, its bounds less than i / n of a clip before the rate's
  [i, i + 1) * clip_seconds. A video longer than T clips at that rate gets T longer
  clips, so T is set to cover a dataset's longest video.
- Words become ids of a `WordVocab` built from the dataset's word counts over all
  splits (0 = padding, 1 = out of vocabulary), truncated to `max_words`; if
  `wordpiece_vocab` is set, sentences also become BERT WordPiece ids `[CLS] .. [SEP]`
  (`max_wordpiece`).
- `paragraphs` groups a video's queries into paragraphs (paragraph models): "time"
  sorts them by start time and cuts them into runs of `max_queries`; "release" keeps
  the release file's order and starts a paragraph at every sentence that starts
  before the one it follows (TACoS lists each annotator's description in time order,
  one after the other), cutting a paragraph longer than `max_queries`.
- `duplicate_sentences="merge"` (CMHN's released TACoS data): the queries of a video
  with the same sentence become one, at its first place in the file, whose
  `gt_windows [K, 2]` (K = `max_windows`) hold every annotated window in file order,
  padded by repeating the first (so a max over windows ignores the padding); its
  `gt_times` is the first window. A sentence with more than K windows is an error.
  Evaluation counts the query once, a hit on any window (`vmr_jax.metrics`); every
  model's loss reads all the windows (`vmr_jax.models.common`: IoU targets are the
  largest over them, regression targets the window a prediction matches). With
  `paragraphs="time"` the merged queries are sorted by their first window's start
  (paragraph models on a dataset with several windows per query); "release"
  paragraphs cannot be merged (`DataConfig`).
  A dataset whose queries have several windows each (`jsonl`: one row per window,
  metadata `max_windows_per_query` > 1) is read only with "merge" and K at least that
  (`DataMismatchError` otherwise); its batches also carry each query's `qid` (the
  release's, as JSON text).
- `srl_file` (AllenNLP SRL JSON lines, `data_pipelines.semantic_roles`): each query
  also gets its semantic role tree, `verb_tokens [V, W]`, `noun_tokens [N, W]` word
  ids (0 = padding) and `role_edges [V, N]` bool (V = `max_verbs`, N = `max_nouns`,
  W = `max_node_words`). A split sentence missing from the file is an error.

Batch kinds (`batch_kind`):
- `"video"`: a video's queries are cut into chunks of at most `max_queries` (for
  training, after a seeded shuffle unless `paragraphs`, whose chunks are the
  paragraphs; evaluation uses
  `eval_max_queries` if set, e.g. to score all of a video's queries with one pass
  over the video); each chunk is one example with the whole video. Keys (leading batch axis B):
      video_id [B] bytes, duration [B] f32, video_feats [B, T, D] f32,
      video_mask [B, T] bool, query_tokens [B, Q, L] i32, query_mask [B, Q, L] bool,
      (query_wordpiece, query_wordpiece_mask [B, Q, Lw]), (verb_tokens [B, Q, V, W],
      noun_tokens [B, Q, N, W], role_edges [B, Q, V, N]), gt_times [B, Q, 2] f32
      seconds, (gt_windows [B, Q, K, 2] f32 seconds), query_index [B, Q] i32 (position in the release file),
      sentence [B, Q] bytes, (qid [B, Q] bytes), query_valid [B, Q] bool,
      example_valid [B] bool.
- `"query"`: one query per example, the same keys without the Q axis and without
  `query_valid`.

Training streams are infinite and deterministic given `seed`: epoch e shuffles with
seed (seed, e), and training batches also carry `epoch [B]` i32, the epoch each
example comes from (for losses that change with it, e.g. a warm-up).
`TrainIterator.state` (epoch, examples consumed) restores the exact position;
resuming re-reads at most one epoch to skip to it. Evaluation reads a split once, in
file order; the final partial batch is padded and `example_valid` marks real rows, so
every query is seen exactly once. Several processes: for evaluation each reads its
share `tfds.even_splits(split, process_count)[process_index]`; for training each
reads the whole split in the same seeded order and keeps its rows
`[p * B / P, (p + 1) * B / P)` of every global batch of B (P processes), so the
global batches, and `TrainIterator.state`, are the same for any number of processes
(the cost: every process decodes every training example).
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Iterator, Mapping

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines import builders  # registers the builders with TFDS
from data_pipelines.data_config import (PER_QUERY_KEYS, DataConfig, DataMismatchError,
                                         DatasetNotBuiltError, NotInDatasetError)
from data_pipelines import semantic_roles
from data_pipelines.words import PAD_ID, UNK_ID, WordVocab
from data_pipelines.wordpiece import WordPieceTokenizer

Batch = dict[str, np.ndarray]


def load_builder(config: DataConfig) -> tfds.core.DatasetBuilder:
  """The prepared TFDS builder; a clear error with the build command if absent."""
  data_dir = os.path.expanduser(config.data_dir) if config.data_dir else None
  cls = builders.BUILDERS[config.name]
  # A builder without configs (jsonl) takes none: a config written for another dataset
  # (`--config=configs/fian_qvhighlights.py --config.data.name=jsonl`) keeps its own.
  builder_config = config.builder_config if cls.BUILDER_CONFIGS else None
  builder = cls(data_dir=data_dir, config=builder_config)
  if not builder.is_prepared():
    manual = {"synthetic": "",
              "jsonl": " --annotations=<files> --features=<folders or file>"}.get(
                  config.name, " --manual_dir=<release files>")
    flag = f" --config={builder_config}" if builder_config else ""
    raise DatasetNotBuiltError(
        f"dataset {builder.info.full_name} is not built in {builder.data_path}; build it "
        f"with:\n  python -m data_pipelines.build {config.name} "
        f"--data_dir={config.data_dir or '<data_dir>'}{manual}{flag}")
  return builder


def check_windows(config: DataConfig, builder: tfds.core.DatasetBuilder) -> None:
  """`DataMismatchError` where the dataset's queries have several windows each
  (metadata `max_windows_per_query`) and `config` would not read them as one query
  with all of them (module docstring)."""
  most = int(builder.info.metadata.get("max_windows_per_query", 1))
  name = builder.info.full_name
  if most > 1 and config.duplicate_sentences != "merge":
    raise DataMismatchError(
        f"{name} has queries with up to {most} windows: set "
        f"data.duplicate_sentences='merge' and data.max_windows >= {most}")
  if most > config.max_windows and config.duplicate_sentences == "merge":
    raise DataMismatchError(f"{name} has queries with up to {most} windows: set "
                            f"data.max_windows >= {most} (it is {config.max_windows})")


def word_vocab(builder: tfds.core.DatasetBuilder, min_count: int = 1) -> WordVocab:
  """The word vocabulary of a built dataset (counts summed over its splits)."""
  totals: dict[str, int] = {}
  for counts in builder.info.metadata["word_counts"].values():
    for word, n in counts.items():
      totals[word] = totals.get(word, 0) + n
  return WordVocab.from_counts(totals, min_count)


class Pipeline:
  """Builds train and eval iterators for one dataset and `DataConfig`."""

  def __init__(self, config: DataConfig, process_index: int = 0, process_count: int = 1):
    self.config = config
    self.builder = load_builder(config)
    self.vocab = word_vocab(self.builder, config.word_min_count)
    self.wordpiece = (WordPieceTokenizer(config.wordpiece_vocab)
                      if config.wordpiece_vocab else None)
    self.trees = (semantic_roles.read_allennlp_srl(config.srl_file, config.max_verbs,
                                                   config.max_nouns)
                  if config.srl_file else None)
    self.feature_dim = int(self.builder.info.metadata["feature_dim"])
    check_windows(config, self.builder)
    self.process_index, self.process_count = process_index, process_count
    self._table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(self.vocab.words), tf.range(len(self.vocab), dtype=tf.int32)),
        default_value=UNK_ID)

  @property
  def metadata(self) -> Mapping[str, Any]:
    return self.builder.info.metadata

  def train_iterator(self, batch_size: int, seed: int,
                     state: Mapping[str, int] | None = None) -> "TrainIterator":
    """Infinite shuffled batches of `batch_size` examples over all processes, this
    process's rows of each, starting at `state` (from `TrainIterator.state`)."""
    if batch_size % self.process_count:
      raise ValueError(f"batch size {batch_size} does not split over "
                       f"{self.process_count} processes")
    rows = batch_size // self.process_count
    first_row = self.process_index * rows
    state = dict(state or {"epoch": 0, "offset": 0})
    videos = self._videos(self.config.train_split, whole=True)

    def epoch(e, skip):
      ds = videos.shuffle(self.config.video_shuffle_buffer, seed=_seed(seed, e, 1))
      ds = self._examples(ds.map(self._parse_video, tf.data.AUTOTUNE), seed, e)
      ds = ds.shuffle(self.config.shuffle_buffer, seed=_seed(seed, e, 2))
      ds = ds.enumerate().map(
          lambda i, ex: {**ex, "epoch": tf.cast(e, tf.int32), "_offset": i + 1})
      return ds.skip(skip)

    first = epoch(tf.constant(state["epoch"], tf.int64), state["offset"])
    rest = tf.data.Dataset.range(state["epoch"] + 1, 2**62).flat_map(lambda e: epoch(e, 0))
    ds = first.concatenate(rest).batch(batch_size, drop_remainder=True)

    def local_rows(batch):  # the position stays the whole batch's, on every process
      position = {"_epoch": batch["epoch"][-1], "_offset": batch["_offset"][-1]}
      batch = {k: v[first_row:first_row + rows] for k, v in batch.items()}
      return {**batch, **{k: tf.fill([rows], v) for k, v in position.items()}}

    if self.process_count > 1:
      ds = ds.map(local_rows, tf.data.AUTOTUNE)
    return TrainIterator(ds.prefetch(tf.data.AUTOTUNE), state)

  def eval_iterator(self, split: str, batch_size: int,
                    num_batches: int | None = None) -> Iterator[Batch]:
    """This process's share of `split`, once, in order; the last batch padded.

    `num_batches`: pad with all-invalid batches up to this many (so that every
    process runs the same number of steps); None: as many as the data needs.
    """
    ds = self._examples(self._videos(split).map(self._parse_video, tf.data.AUTOTUNE))
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    count = 0
    template = None
    for batch in ds.as_numpy_iterator():
      template = batch
      count += 1
      yield _pad_batch(batch, batch_size)
    if num_batches is not None:
      if count > num_batches:
        raise ValueError(f"split {split!r} needs {count} batches, more than "
                         f"num_batches={num_batches}")
      if template is None and count < num_batches:
        raise ValueError(f"split {split!r} is empty on process {self.process_index}")
      for _ in range(num_batches - count):
        yield _pad_batch(template, batch_size, valid=0)

  def count_examples(self, split: str) -> int:
    """Examples (chunks or queries) of this process's share of `split`."""
    cfg = self.config
    ds = self._videos(split, decoders=tfds.decode.PartialDecoding(
        {"video_id": True, "queries": {"start": True, "end": True, "sentence": True}}))
    starts = lambda ex: tf.gather(ex["queries"]["start"], self._query_order(ex)[0])
    if cfg.batch_kind == "video":
      q = self._chunk_size(training=False)
      counts = ds.map(lambda ex: tf.size(chunk_begins(starts(ex), q,
                                                      cfg.paragraphs == "release")))
    else:
      counts = ds.map(lambda ex: tf.size(starts(ex)))
    return int(counts.reduce(np.int64(0), lambda a, n: a + tf.cast(n, tf.int64)))

  def check_split(self, split: str) -> None:
    """`NotInDatasetError` naming the closest split where the dataset lacks `split`."""
    splits = list(self.builder.info.splits)
    if split not in splits:
      close = difflib.get_close_matches(split, splits, n=1)
      hint = f"did you mean {close[0]!r}? " if close else ""
      raise NotInDatasetError(f"split {split!r} is not in {self.builder.info.full_name}: "
                              f"{hint}its splits are {', '.join(sorted(splits))}")

  def video_ids(self, split: str) -> list[str]:
    """Every video id of `split`, in file order."""
    self.check_split(split)
    ds = self._videos(split, whole=True,
                      decoders=tfds.decode.PartialDecoding({"video_id": True}))
    return [ex["video_id"].decode() for ex in ds.as_numpy_iterator()]

  def video_features(self, split: str, video: str) -> tuple[np.ndarray, float]:
    """The stored clip features `[clips, D]` and duration (seconds) of `video` in
    `split` (prediction on a dataset video); `NotInDatasetError` naming the closest
    ids for a video the split lacks."""
    videos = self.video_ids(split)
    if video not in videos:
      close = ", ".join(map(repr, difflib.get_close_matches(video, videos, n=3, cutoff=0)))
      raise NotInDatasetError(f"video {video!r} is not in split {split!r} "
                              f"({len(videos)} videos); the closest: {close}")
    found = self._videos(split, whole=True).filter(lambda ex: ex["video_id"] == video)
    example = next(iter(found.take(1)))
    return example["features"].numpy(), float(example["duration"].numpy())

  def _videos(self, split: str, decoders=None, whole: bool = False) -> tf.data.Dataset:
    """The videos of `split`: this process's share, or with `whole` all of them."""
    sub_split = split if whole else tfds.even_splits(
        split, n=self.process_count, drop_remainder=False)[self.process_index]
    ds = self.builder.as_dataset(split=sub_split, shuffle_files=False, decoders=decoders,
                                 read_config=tfds.ReadConfig(try_autocache=False))
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)

  def _parse_video(self, ex) -> dict[str, tf.Tensor]:
    """One TFDS example -> resampled video and all its tokenized queries `[n, ...]`."""
    cfg = self.config
    queries = ex["queries"]
    order, windows = self._query_order(ex)
    feats, mask = resample_features(ex["features"], cfg.num_clips, cfg.short_videos,
                                    ex["duration"], cfg.clip_seconds)
    words = tf.gather(queries["words"], order)
    ids = self._table.lookup(words[:, :cfg.max_words])
    out = {
        "video_id": ex["video_id"],
        "duration": ex["duration"],
        "video_feats": tf.ensure_shape(feats, [cfg.num_clips, self.feature_dim]),
        "video_mask": mask,
        "query_tokens": ids.to_tensor(PAD_ID, shape=[None, cfg.max_words]),
        "query_mask": tf.ones_like(ids, tf.bool).to_tensor(False, shape=[None, cfg.max_words]),
        "gt_times": tf.stack([tf.gather(queries["start"], order),
                              tf.gather(queries["end"], order)], axis=-1),
        "query_index": tf.gather(queries["index"], order),
        "sentence": tf.gather(queries["sentence"], order),
    }
    if windows is not None:
      out["gt_windows"] = windows
    if "qid" in queries:
      out["qid"] = tf.gather(queries["qid"], order)
    if self.wordpiece is not None:
      wp_ids, wp_mask = tf.numpy_function(self._encode_wordpiece, [out["sentence"]],
                                          [tf.int32, tf.bool], stateful=False)
      out["query_wordpiece"] = tf.ensure_shape(wp_ids, [None, cfg.max_wordpiece])
      out["query_wordpiece_mask"] = tf.ensure_shape(wp_mask, [None, cfg.max_wordpiece])
    if self.trees is not None:
      verbs, nouns, edges = tf.numpy_function(
          self._encode_trees,
          [out["video_id"], out["sentence"]], [tf.int32, tf.int32, tf.bool], stateful=False)
      out["verb_tokens"] = tf.ensure_shape(verbs, [None, cfg.max_verbs, cfg.max_node_words])
      out["noun_tokens"] = tf.ensure_shape(nouns, [None, cfg.max_nouns, cfg.max_node_words])
      out["role_edges"] = tf.ensure_shape(edges, [None, cfg.max_verbs, cfg.max_nouns])
    return out

  def _query_order(self, ex) -> tuple[tf.Tensor, tf.Tensor | None]:
    """The positions `[n]` of a TFDS example's queries that become queries, in their
    order (`paragraphs`, `duplicate_sentences`), and with "merge" their `gt_windows
    [n, K, 2]` (else None)."""
    cfg = self.config
    queries = ex["queries"]
    if cfg.duplicate_sentences == "merge":
      times = tf.stack([queries["start"], queries["end"]], axis=-1)
      order, windows = merge_duplicates(queries["sentence"], times, cfg.max_windows,
                                        ex["video_id"])
      if cfg.paragraphs == "time":  # by the first window's start (the query's gt_times)
        by_start = tf.argsort(windows[:, 0, 0], stable=True)
        order, windows = tf.gather(order, by_start), tf.gather(windows, by_start)
      return order, windows
    if cfg.paragraphs == "time":
      return tf.argsort(queries["start"], stable=True), None
    return tf.range(tf.shape(queries["start"])[0]), None

  def _encode_trees(self, video: bytes, sentences: np.ndarray):
    trees = []
    for sentence in (s.decode("utf-8") for s in sentences):
      tree = self.trees.get(semantic_roles.sentence_key(sentence))
      if tree is None:
        raise KeyError(f"{self.config.srl_file}: no parse of the sentence {sentence!r} "
                       f"of video {video.decode()!r}")
      trees.append(tree)
    cfg = self.config
    return semantic_roles.encode_trees(trees, self.vocab, cfg.max_verbs, cfg.max_nouns,
                                       cfg.max_node_words)

  def _encode_wordpiece(self, sentences: np.ndarray):
    return self.wordpiece.encode([s.decode("utf-8") for s in sentences],
                                 self.config.max_wordpiece)

  def _examples(self, videos: tf.data.Dataset, seed: int | None = None,
                epoch: tf.Tensor | None = None) -> tf.data.Dataset:
    """Parsed videos -> examples of the configured batch kind.

    With a `seed` (training) a video's queries are shuffled before chunking, unless
    they form `paragraphs`.
    """
    cfg = self.config
    per_query = PER_QUERY_KEYS

    def split_video(video):
      video = dict(video)
      n = tf.shape(video["gt_times"])[0]
      if seed is not None and not cfg.paragraphs:
        key = tf.strings.to_hash_bucket_fast(video["video_id"], 2**31)
        perm = tf.argsort(tf.random.stateless_uniform(
            [n], seed=tf.stack([_seed(seed, epoch, 3), key])))
        video.update({k: tf.gather(video[k], perm) for k in per_query if k in video})
      shared = {k: v for k, v in video.items() if k not in per_query}
      shared["example_valid"] = tf.constant(True)
      if cfg.batch_kind == "query":
        return tf.data.Dataset.range(tf.cast(n, tf.int64)).map(
            lambda i: {**shared, **{k: video[k][i] for k in per_query if k in video}})
      q = self._chunk_size(training=seed is not None)
      begins = chunk_begins(video["gt_times"][:, 0], q, cfg.paragraphs == "release")
      sizes = tf.concat([begins[1:], [n]], 0) - begins

      def chunk(c):
        begin, size = begins[c], sizes[c]
        out = dict(shared, query_valid=tf.range(q) < size)
        for k in per_query & video.keys():
          part = video[k][begin:begin + size]
          pad = [[0, q - size]] + [[0, 0]] * (len(part.shape) - 1)
          out[k] = tf.ensure_shape(tf.pad(part, pad), [q] + part.shape[1:])
        return out

      return tf.data.Dataset.range(tf.size(begins, tf.int64)).map(chunk)

    return videos.flat_map(split_video)

  def _chunk_size(self, training: bool) -> int:
    """Queries per video-level example."""
    if training or not self.config.eval_max_queries:
      return self.config.max_queries
    return self.config.eval_max_queries


class TrainIterator:
  """Iterates training batches; `state` is the position after the last batch given."""

  def __init__(self, ds: tf.data.Dataset, state: Mapping[str, int]):
    self._it = ds.as_numpy_iterator()
    self.state = dict(state)

  def __iter__(self) -> "TrainIterator":
    return self

  def __next__(self) -> Batch:
    batch = next(self._it)
    epoch = batch.pop("_epoch", batch["epoch"])
    self.state = {"epoch": int(epoch[-1]), "offset": int(batch.pop("_offset")[-1])}
    return batch


def chunk_begins(starts: tf.Tensor, size: int, paragraph_breaks: bool) -> tf.Tensor:
  """First query of each chunk `[C]` of a video's queries `starts [n]` (seconds):
  every `size` queries, and with `paragraph_breaks` also wherever a query starts
  before the one it follows (a new paragraph, whose count of `size` starts afresh)."""
  n = tf.shape(starts)[0]
  index = tf.range(n)
  if not paragraph_breaks:
    return index[::size]
  new = tf.concat([[True], starts[1:] < starts[:-1]], 0)
  paragraph_begin = tf.gather(tf.boolean_mask(index, new),
                              tf.cumsum(tf.cast(new, tf.int32)) - 1)
  return tf.boolean_mask(index, (index - paragraph_begin) % size == 0)


def merge_duplicates(sentences: tf.Tensor, times: tf.Tensor, max_windows: int,
                     video_id: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """A video's `sentences [n]` and their `times [n, 2]` -> the position `[U]` of each
  distinct sentence's first occurrence (ascending) and its windows `[U, K, 2]`, all
  its occurrences' times in file order, padded by repeating its first (K =
  `max_windows`; a sentence annotated more often is an error naming the video)."""
  distinct, group = tf.unique(sentences)  # in order of first occurrence
  u = tf.size(distinct)
  positions = tf.range(tf.size(sentences))
  first = tf.math.unsorted_segment_min(positions, group, u)
  counts = tf.math.bincount(group, minlength=u, maxlength=u)
  most = tf.reduce_max(counts)
  check = tf.debugging.Assert(most <= max_windows, [
      f"a sentence is annotated more often than data.max_windows={max_windows} "
      "(raise it) in video", video_id, "windows:", most])
  with tf.control_dependencies([check]):
    by_group = tf.argsort(group, stable=True)  # each group's occurrences in file order
  k = tf.range(max_windows)[None, :]
  slot = tf.cumsum(counts, exclusive=True)[:, None] + tf.where(k < counts[:, None], k, 0)
  return first, tf.gather(times, tf.gather(by_group, slot))


def resample_features(feats: tf.Tensor, num_clips: int, short_videos: str = "stretch",
                      duration: tf.Tensor | None = None, clip_seconds: float = 0.0
                      ) -> tuple[tf.Tensor, tf.Tensor]:
  """`[N, D]` -> `[num_clips, D]` features and `[num_clips]` mask (module docstring);
  `duration` (seconds) is read only with `clip_seconds` > 0."""
  n = tf.shape(feats)[0]
  if clip_seconds > 0:
    count = clip_count(duration, clip_seconds, num_clips)
    return _padded(_average_pool(feats, count), num_clips)
  if short_videos == "pad":
    def pool():
      return _average_pool(feats, num_clips), tf.ones([num_clips], tf.bool)
    return tf.cond(n < num_clips, lambda: _padded(feats, num_clips), pool)
  return _average_pool(feats, num_clips), tf.ones([num_clips], tf.bool)


def _padded(clips: tf.Tensor, num_clips: int) -> tuple[tf.Tensor, tf.Tensor]:
  """`[n, D]` clips (n <= num_clips) zero-padded to `[num_clips, D]`, and their mask."""
  n = tf.shape(clips)[0]
  return tf.pad(clips, [[0, num_clips - n], [0, 0]]), tf.range(num_clips) < n


def clip_count(duration: tf.Tensor, clip_seconds: float, num_clips: int) -> tf.Tensor:
  """int32 ceil(duration / clip_seconds - 1e-3), clipped to [1, num_clips]."""
  count = tf.math.ceil(tf.cast(duration, tf.float64) / clip_seconds - 1e-3)
  return tf.cast(tf.clip_by_value(count, 1, num_clips), tf.int32)


def _average_pool(feats: tf.Tensor, num_clips) -> tf.Tensor:
  """`[N, D]` -> `[num_clips, D]` (a Python or a scalar tensor count)."""
  n = tf.shape(feats)[0]
  count = tf.cast(num_clips, tf.float64)
  bounds = tf.cast(tf.round(tf.cast(tf.range(num_clips + 1), tf.float64)
                            * tf.cast(n, tf.float64) / count), tf.int32)
  starts = tf.minimum(bounds[:-1], n - 1)
  ends = tf.maximum(bounds[1:], starts + 1)
  csum = tf.concat([tf.zeros_like(feats[:1], tf.float64),
                    tf.cumsum(tf.cast(feats, tf.float64), axis=0)], axis=0)
  sums = tf.gather(csum, ends) - tf.gather(csum, starts)
  return tf.cast(sums / tf.cast(ends - starts, tf.float64)[:, None], feats.dtype)


def _seed(seed: int, epoch, salt: int) -> tf.Tensor:
  """A deterministic int64 seed from (seed, epoch, salt)."""
  epoch = tf.cast(epoch, tf.int64) if epoch is not None else tf.constant(0, tf.int64)
  return (tf.constant(seed, tf.int64) * 1_000_003 + epoch * 101 + salt) % (2**31 - 1)


def _pad_batch(batch: Batch, batch_size: int, valid: int | None = None) -> Batch:
  """Pads rows to `batch_size` by repeating row 0 with `example_valid=False`.

  `valid=0` turns the whole batch into padding (for `num_batches`).
  """
  rows = len(batch["example_valid"]) if valid is None else valid
  out = {}
  for k, v in batch.items():
    filler = np.repeat(v[:1], batch_size - rows, axis=0)
    out[k] = np.concatenate([v[:rows], filler], axis=0)
  out["example_valid"] = np.arange(batch_size) < rows
  if "query_valid" in out:
    out["query_valid"] = out["query_valid"] & out["example_valid"][:, None]
  return out
