import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines import input_pipeline as ip
from data_pipelines.words import split_words


def reference_pool(feats, t):
  """Average pooling over equal spans, written as the docstring states it."""
  n = len(feats)
  bounds = [int(np.round(i * n / t)) for i in range(t + 1)]  # numpy rounds half to even
  out = []
  for i in range(t):
    start = min(bounds[i], n - 1)
    end = max(bounds[i + 1], start + 1)
    out.append(feats[start:end].mean(0))
  return np.stack(out)


@pytest.mark.parametrize("n,t", [(100, 16), (17, 16), (16, 16), (5, 16), (1, 4), (129, 128)])
def test_resample_matches_reference(n, t):
  feats = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
  got, mask = ip.resample_features(tf.constant(feats), t)
  np.testing.assert_allclose(got.numpy(), reference_pool(feats, t), rtol=1e-5, atol=1e-5)
  assert mask.numpy().all()
  if n >= t:  # every input clip is used exactly once
    bounds = [int(np.round(j * n / t)) for j in range(t + 1)]
    uses = np.zeros(n)
    for i in range(t):
      uses[bounds[i]:bounds[i + 1]] += 1
    assert (uses == 1).all()


def test_resample_pad_keeps_short_videos():
  feats = np.arange(10, dtype=np.float32).reshape(5, 2)
  got, mask = ip.resample_features(tf.constant(feats), 8, "pad")
  np.testing.assert_array_equal(got.numpy()[:5], feats)
  np.testing.assert_array_equal(got.numpy()[5:], 0)
  np.testing.assert_array_equal(mask.numpy(), [1] * 5 + [0] * 3)
  long, mask = ip.resample_features(tf.constant(np.ones((20, 2), np.float32)), 8, "pad")
  assert long.shape == (8, 2) and mask.numpy().all()


def released_clips(rows, duration):
  """CMHN's released 1-clip-a-second features (activitynet_captions.py), written from
  its loop: clip j averages the rows int(j s) .. max(int(j s) + 1, int((j + 1) s)),
  s = rows per second, for j while (j + 1) s < N + s."""
  s = len(rows) / duration
  return np.stack([rows[int(i - s):max(int(i - s) + 1, int(i))].mean(0)
                   for i in np.arange(s, len(rows) + s, s)])


@pytest.mark.parametrize("rows_per_second,duration", [(4, 25.0), (2, 7.0), (1, 9.0),
                                                      (4, 3.0)])
def test_clips_at_a_rate_are_the_released_seconds(rows_per_second, duration):
  """`clip_seconds` > 0: ceil(duration / clip_seconds) clips, each the mean of its
  second's rows (as the release computes them where a second holds whole rows),
  then zeros, masked."""
  rows = np.random.default_rng(0).normal(
      size=(int(rows_per_second * duration), 3)).astype(np.float32)
  got, mask = ip.resample_features(tf.constant(rows), 32, "stretch",
                                   tf.constant(duration, tf.float32), 1.0)
  want = released_clips(rows, duration)
  assert mask.numpy().sum() == len(want) == int(np.ceil(duration))
  np.testing.assert_allclose(got.numpy()[:len(want)], want, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(got.numpy()[len(want):], 0)


def test_clips_at_a_rate_longer_than_num_clips_are_pooled_to_it():
  rows = np.ones((40, 2), np.float32)
  got, mask = ip.resample_features(tf.constant(rows), 8, "stretch",
                                   tf.constant(40.0), 1.0)
  assert got.shape == (8, 2) and mask.numpy().all()
  _, mask = ip.resample_features(tf.constant(rows), 8, "stretch", tf.constant(0.2), 1.0)
  np.testing.assert_array_equal(mask.numpy(), [1] + [0] * 7)  # at least one clip


def test_pipeline_at_a_clip_rate_masks_each_video_to_its_length(tiny_data_dir):
  pipeline = ip.Pipeline(config(tiny_data_dir, clip_seconds=2.0))  # 6-13 clips of 16
  lengths = []
  for batch in pipeline.eval_iterator("test", 4):
    for mask, duration, valid, feats in zip(batch["video_mask"], batch["duration"],
                                            batch["example_valid"], batch["video_feats"]):
      if valid:
        assert mask.sum() == int(np.ceil(duration / 2.0 - 1e-3))
        assert mask[:mask.sum()].all() and not (feats[~mask] != 0).any()
        lengths.append(int(mask.sum()))
  assert len(set(lengths)) > 1  # the tiny set's videos differ in length


def raw_queries(data_dir, split="test"):
  """{(video_id, query_index): (sentence, start, end)} straight from TFDS."""
  builder = tfds.builder("synthetic/tiny", data_dir=str(data_dir))
  out = {}
  for ex in tfds.as_numpy(builder.as_dataset(split=split)):
    q = ex["queries"]
    for i, s, e, sentence in zip(q["index"], q["start"], q["end"], q["sentence"]):
      out[(ex["video_id"].decode(), int(i))] = (sentence.decode(), float(s), float(e))
  return out


def config(data_dir, **kw):
  return ip.DataConfig(name="synthetic", builder_config="tiny", data_dir=str(data_dir),
                       num_clips=16, **kw)


def collect(batches, video_level):
  seen = []
  for b in batches:
    valid = b["query_valid"] if video_level else b["example_valid"]
    for idx in zip(*np.nonzero(valid)):
      vid = b["video_id"][idx[0]].decode()
      seen.append(((vid, int(b["query_index"][idx])), b["sentence"][idx].decode(),
                   tuple(b["gt_times"][idx]), b["duration"][idx[0]]))
  return seen


@pytest.mark.parametrize("batch_kind", ["video", "query"])
@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_sees_every_query_once(tiny_data_dir, batch_kind, process_count):
  raw = raw_queries(tiny_data_dir)
  seen = []
  for index in range(process_count):
    pipeline = ip.Pipeline(config(tiny_data_dir, batch_kind=batch_kind, max_queries=2),
                           process_index=index, process_count=process_count)
    batches = list(pipeline.eval_iterator("test", batch_size=3, num_batches=12))
    assert len(batches) == 12 and all(len(b["example_valid"]) == 3 for b in batches)
    assert sum(b["example_valid"].sum() for b in batches) == pipeline.count_examples("test")
    seen += collect(batches, batch_kind == "video")
  keys = [k for k, *_ in seen]
  assert len(keys) == len(set(keys)) == len(raw)
  for key, sentence, (start, end), _ in seen:
    assert raw[key][0] == sentence
    assert raw[key][1:] == pytest.approx((start, end))


def test_eval_batch_contents(tiny_data_dir):
  pipeline = ip.Pipeline(config(tiny_data_dir, max_queries=3, max_words=6,
                                wordpiece_vocab=""))
  b = next(pipeline.eval_iterator("test", batch_size=2))
  assert b["video_feats"].shape == (2, 16, 16) and b["video_feats"].dtype == np.float32
  assert b["query_tokens"].shape == (2, 3, 6) and b["query_mask"].shape == (2, 3, 6)
  assert b["gt_times"].shape == (2, 3, 2) and "query_wordpiece" not in b
  for i, j in zip(*np.nonzero(b["query_valid"])):
    words = split_words(b["sentence"][i, j].decode())[:6]
    ids = b["query_tokens"][i, j][b["query_mask"][i, j]]
    assert [pipeline.vocab.words[k] for k in ids] == words
  assert not b["query_mask"][~b["query_valid"]].any()


def test_wordpiece_ids(tiny_data_dir, tiny_release):
  pipeline = ip.Pipeline(config(tiny_data_dir, batch_kind="query",
                                wordpiece_vocab=str(tiny_release / "vocab.txt"),
                                max_wordpiece=12))
  b = next(pipeline.eval_iterator("val", batch_size=4))
  ids, mask = b["query_wordpiece"], b["query_wordpiece_mask"]
  assert ids.shape == (4, 12)
  cls, sep = (pipeline.wordpiece._tokenizer.convert_tokens_to_ids(t) for t in ("[CLS]", "[SEP]"))
  assert (ids[:, 0] == cls).all()
  lengths = mask.sum(1)
  assert all(ids[i, n - 1] == sep or n == 12 for i, n in enumerate(lengths))
  assert (ids[~mask] == pipeline.wordpiece.pad_id).all()


def test_time_paragraphs_in_time_order(tiny_data_dir):
  pipeline = ip.Pipeline(config(tiny_data_dir, max_queries=3, paragraphs="time"))
  for b in pipeline.eval_iterator("train", batch_size=4):
    for starts, valid in zip(b["gt_times"][..., 0], b["query_valid"]):
      assert (np.diff(starts[valid]) >= 0).all()
  for _, b in zip(range(3), pipeline.train_iterator(4, seed=0)):
    for starts, valid in zip(b["gt_times"][..., 0], b["query_valid"]):
      assert (np.diff(starts[valid]) >= 0).all()


def test_chunk_begins_cut_at_paragraph_breaks():
  starts = tf.constant([0.0, 5.0, 10.0, 2.0, 3.0, 1.0, 8.0, 9.0, 10.0, 11.0])
  assert ip.chunk_begins(starts, 3, False).numpy().tolist() == [0, 3, 6, 9]
  # paragraphs [0, 3), [3, 5), [5, 10); the last one is cut after 3 queries
  assert ip.chunk_begins(starts, 3, True).numpy().tolist() == [0, 3, 5, 8]


def test_release_paragraphs_keep_file_order(tiny_data_dir):
  pipeline = ip.Pipeline(config(tiny_data_dir, max_queries=3, paragraphs="release"))
  seen = []
  for b in pipeline.eval_iterator("val", batch_size=4):
    for index, starts, valid in zip(b["query_index"], b["gt_times"][..., 0],
                                    b["query_valid"]):
      assert (np.diff(index[valid]) > 0).all() and (np.diff(starts[valid]) >= 0).all()
      seen += index[valid].tolist()
  assert len(seen) == pipeline.metadata["num_queries"]["val"]
  examples = sum(int(b["example_valid"].sum()) for b in pipeline.eval_iterator("val", 4))
  assert pipeline.count_examples("val") == examples


@pytest.mark.parametrize("batch_kind", ["video", "query"])
def test_train_is_deterministic_and_resumes_exactly(tiny_data_dir, batch_kind):
  pipeline = ip.Pipeline(config(tiny_data_dir, batch_kind=batch_kind, max_queries=2,
                                shuffle_buffer=16))
  steps = 2 * pipeline.count_examples("train") // 4 + 3  # crosses two epoch boundaries
  it = pipeline.train_iterator(4, seed=7)
  run = [next(it) for _ in range(steps)]
  again = pipeline.train_iterator(4, seed=7)
  for a in run[:5]:
    np.testing.assert_array_equal(a["query_index"], next(again)["query_index"])
  half = pipeline.train_iterator(4, seed=7)
  for _ in range(steps // 2):
    next(half)
  resumed = pipeline.train_iterator(4, seed=7, state=half.state)
  for a in run[steps // 2:]:
    b = next(resumed)
    np.testing.assert_array_equal(a["video_id"], b["video_id"])
    np.testing.assert_array_equal(a["query_index"], b["query_index"])
    np.testing.assert_array_equal(a["video_feats"], b["video_feats"])
  assert resumed.state["epoch"] >= 1
  other = next(pipeline.train_iterator(4, seed=8))
  assert not (np.array_equal(other["video_id"], run[0]["video_id"])
              and np.array_equal(other["query_index"], run[0]["query_index"]))
  assert all(b["example_valid"].all() for b in run)


def test_train_epoch_covers_every_query(tiny_data_dir):
  pipeline = ip.Pipeline(config(tiny_data_dir, batch_kind="query"))
  n = pipeline.count_examples("train")
  it = pipeline.train_iterator(1, seed=0)
  batches = [next(it) for _ in range(n)]
  keys = [(b["video_id"][0], int(b["query_index"][0])) for b in batches]
  assert len(set(keys)) == n and it.state == {"epoch": 0, "offset": n}
  assert all(b["epoch"].tolist() == [0] for b in batches)
  assert next(it)["epoch"].tolist() == [1] and it.state == {"epoch": 1, "offset": 1}


def test_not_built_error_names_the_command(tmp_path):
  with pytest.raises(ip.DatasetNotBuiltError,
                     match="python -m data_pipelines.build synthetic .*--config=tiny"):
    ip.Pipeline(config(tmp_path))


def test_config_validation():
  with pytest.raises(ValueError, match="batch_kind"):
    ip.DataConfig(batch_kind="clip")
  with pytest.raises(ValueError, match="short_videos"):
    ip.DataConfig(short_videos="crop")
  with pytest.raises(ValueError, match="clip_seconds must be >= 0"):
    ip.DataConfig(clip_seconds=-1.0)
  with pytest.raises(ValueError, match="unknown config.data fields"):
    ip.DataConfig.from_config({"name": "tacos", "num_clip": 3})
  assert ip.DataConfig.from_config({"num_clips": 3}).num_clips == 3


def test_eval_max_queries_puts_a_video_in_one_example(tiny_data_dir):
  pipeline = ip.Pipeline(config(tiny_data_dir, max_queries=2, eval_max_queries=8))
  batches = list(pipeline.eval_iterator("test", batch_size=4))
  videos = [v for b in batches for v, ok in zip(b["video_id"], b["example_valid"]) if ok]
  assert len(videos) == len(set(videos)) == 4 == pipeline.count_examples("test")
  assert batches[0]["query_valid"].shape == (4, 8)
  train = next(pipeline.train_iterator(4, seed=0))
  assert train["query_valid"].shape == (4, 2)  # training keeps max_queries


def node_words(pipeline, ids):
  return tuple(pipeline.vocab.words[k] for k in ids if k)


@pytest.mark.parametrize("batch_kind", ["video", "query"])
def test_role_trees_follow_their_queries(tiny_data_dir, tiny_release, batch_kind):
  from data_pipelines import semantic_roles
  srl = tiny_release / "srl.jsonl"
  trees = semantic_roles.read_allennlp_srl(str(srl))
  pipeline = ip.Pipeline(config(tiny_data_dir, batch_kind=batch_kind, max_queries=3,
                                srl_file=str(srl), max_verbs=2, max_nouns=3,
                                max_node_words=2))
  batches = [next(pipeline.eval_iterator("test", batch_size=4)),
             next(pipeline.train_iterator(4, seed=0))]
  checked = 0
  for b in batches:
    lead = b["verb_tokens"].shape[:-2]
    assert b["noun_tokens"].shape == lead + (3, 2) and b["role_edges"].shape == lead + (2, 3)
    valid = b["query_valid"] if batch_kind == "video" else b["example_valid"]
    for idx in zip(*np.nonzero(valid)):
      tree = trees[semantic_roles.sentence_key(b["sentence"][idx].decode())]
      assert [node_words(pipeline, v) for v in b["verb_tokens"][idx] if v[0]] == [
          v[:2] for v in tree.verbs[:2]]
      assert [node_words(pipeline, n) for n in b["noun_tokens"][idx] if n[0]] == [
          n[:2] for n in tree.nouns[:3]]
      assert {tuple(e) for e in np.argwhere(b["role_edges"][idx])} == {
          (v, n) for v, n in tree.edges if v < 2 and n < 3}
      checked += 1
  assert checked >= 8


def test_role_trees_missing_a_sentence(tiny_data_dir, tiny_release, tmp_path):
  lines = (tiny_release / "srl.jsonl").read_text().splitlines()
  partial = tmp_path / "srl.jsonl"
  partial.write_text("\n".join(lines[1:]) + "\n")
  pipeline = ip.Pipeline(config(tiny_data_dir, srl_file=str(partial)))
  with pytest.raises(Exception, match="no parse of the sentence"):
    for _ in pipeline.eval_iterator("train", batch_size=4):
      pass
