import json

import h5py
import numpy as np
import pytest

from data_pipelines import synthetic_corpus as sc
from tests.conftest import TINY_SPEC
from data_pipelines import chance
from vmr_jax import metrics

SPEC = sc.CorpusSpec(num_videos=(80, 0, 80), feature_dim=32)


def test_deterministic_and_seeded():
  a, b = sc.generate(TINY_SPEC), sc.generate(TINY_SPEC)
  c = sc.generate(sc.CorpusSpec(**{**TINY_SPEC.__dict__, "seed": 1}))
  for split in sc.SPLITS:
    for x, y in zip(a[split], b[split]):
      np.testing.assert_array_equal(x.features, y.features)
      assert x.sentences == y.sentences and x.spans == y.spans
  assert any(x.sentences != z.sentences for x, z in zip(a["train"], c["train"]))


def test_files_in_release_formats(tiny_release):
  tacos = json.loads((tiny_release / "tacos" / "train.json").read_text())
  anet = json.loads((tiny_release / "activitynet_captions" / "val_1.json").read_text())
  entry = next(iter(tacos.values()))
  assert set(entry) == {"num_frames", "fps", "timestamps", "sentences"}
  assert set(next(iter(anet.values()))) == {"duration", "timestamps", "sentences"}
  with h5py.File(tiny_release / "tacos" / "tall_c3d_features.hdf5") as f:
    vid = next(iter(tacos))
    assert f[vid].shape == (entry["num_frames"] // sc.FRAMES_PER_CLIP, TINY_SPEC.feature_dim)
  with h5py.File(tiny_release / "activitynet_captions" / "sub_activitynet_v1-3.c3d.hdf5") as f:
    assert f[next(iter(anet))]["c3d_features"].shape[1] == TINY_SPEC.feature_dim
  glove = (tiny_release / f"glove.synthetic.{TINY_SPEC.glove_dim}d.txt").read_text().splitlines()
  spaced = [line for line in glove if line.startswith(sc.SPACED_TOKEN + " ")]
  assert len(spaced) == 1 and len(spaced[0].split(" ")) == 3 + TINY_SPEC.glove_dim
  vocab = (tiny_release / "vocab.txt").read_text().split()
  assert vocab[:2] == ["[PAD]", "[UNK]"] and set(sc.vocabulary()) <= set(vocab)


def test_spans_are_disjoint_and_inside():
  for video in sc.generate(TINY_SPEC)["train"]:
    spans = sorted(set(video.spans))
    assert all(0 < s < e < len(video.features) for s, e in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))


def test_bad_spec():
  with pytest.raises(ValueError, match="num_concepts"):
    sc.CorpusSpec(num_concepts=100)
  with pytest.raises(ValueError, match="min_clips"):
    sc.CorpusSpec(min_clips=10, max_events=5)


def concept_of(sentence):
  words = sentence.split()
  verb = next(w for w in words if w in sc.VERBS)
  return verb, next(w for w in words[words.index(verb):] if w in sc.OBJECTS)


def runs(labels, target):
  """Maximal runs [start, end) of clips labelled `target`."""
  out, start = [], None
  for i, label in enumerate(list(labels) + [None]):
    if label == target and start is None:
      start = i
    elif label != target and start is not None:
      out.append((start, i))
      start = None
  return out


def oracle_predictions(corpus, use_ordinals):
  """Nearest-prototype clip labels learned on train, then a run picked per sentence."""
  sums, counts = {}, {}
  for video in corpus["train"]:
    label = np.full(len(video.features), None, dtype=object)
    for (s, e), sentence in zip(video.spans, video.sentences):
      label[s:e] = [concept_of(sentence)] * (e - s)
    for key, feats in zip(label, video.features):  # key None: background
      sums[key] = sums.get(key, 0) + feats
      counts[key] = counts.get(key, 0) + 1
  keys = list(sums)
  protos = np.stack([sums[k] / counts[k] for k in keys])
  preds, gts, ordinal = [], [], []
  for video in corpus["test"]:
    dist = ((video.features[:, None] - protos[None]) ** 2).sum(-1)
    labels = [keys[j] for j in dist.argmin(1)]
    for (s, e), sentence in zip(video.spans, video.sentences):
      found = runs(labels, concept_of(sentence)) or [(0, len(labels))]
      pick = max(found, key=lambda r: r[1] - r[0])
      if use_ordinals and "second time" in sentence and len(found) > 1:
        pick = sorted(found)[1]
      elif use_ordinals and "first time" in sentence:
        pick = sorted(found)[0]
      preds.append(np.array([pick]))
      gts.append((s, e))
      ordinal.append(" time" in sentence)
  return preds, np.array(gts, float), np.array(ordinal)


def test_learnable_but_needs_context():
  """A simple learned oracle is far above chance, and only when it reads the context
  words does it localize the repeated-concept sentences."""
  corpus = sc.generate(SPEC)
  preds, gts, ordinal = oracle_predictions(corpus, use_ordinals=True)
  durations = np.array([len(v.features) for v in corpus["test"] for _ in v.sentences], float)
  level = chance.chance_levels(gts, durations, 64, (1,), (0.5,))["R@1,IoU=0.5"]
  with_context = metrics.grounding_metrics(preds, gts, (1,), (0.5,))["R@1,IoU=0.5"]
  assert level < 0.1 and with_context > 0.75
  assert ordinal.mean() > 0.1  # a real share of sentences need the ordinal words
  blind, _, _ = oracle_predictions(corpus, use_ordinals=False)
  on_ordinal = lambda p: metrics.grounding_metrics(
      [x for x, o in zip(p, ordinal) if o], gts[ordinal], (1,), (0.5,))["R@1,IoU=0.5"]
  assert on_ordinal(preds) > 0.75 and on_ordinal(blind) < 0.65


def test_srl_file_gives_each_sentence_its_role_tree(tiny_release):
  from data_pipelines import semantic_roles
  trees = semantic_roles.read_allennlp_srl(str(tiny_release / "srl.jsonl"))
  tacos = json.loads((tiny_release / "tacos" / "test.json").read_text())
  sentences = [s for entry in tacos.values() for s in entry["sentences"]]
  assert sentences and all(semantic_roles.sentence_key(s) in trees for s in sentences)
  for sentence in sentences:
    words = sentence.split()
    tree = trees[semantic_roles.sentence_key(sentence)]
    verb, obj = concept_of(sentence)
    assert tree.verbs[0] == (verb,) and tree.verbs == tuple((w,) for w in words
                                                            if w in sc.VERBS)
    assert ("the", obj) in tree.nouns and (0, tree.nouns.index(("the", obj))) in tree.edges
    subject = tuple(words[:words.index(verb)])
    assert (0, tree.nouns.index(subject)) in tree.edges
  clause = sc.srl_record("a man washes the cup after a woman peels the carrot")
  assert [f["tags"] for f in clause["verbs"]] == [
      ["B-ARG0", "I-ARG0", "B-V", "B-ARG1", "I-ARG1"] + ["B-ARGM-TMP"] + ["I-ARGM-TMP"] * 5,
      ["O"] * 6 + ["B-ARG0", "I-ARG0", "B-V", "B-ARG1", "I-ARG1"]]


def test_moment_detr_copy_builds_as_jsonl_with_nothing_skipped(tiny_release, tmp_path):
  """jsonl/{split}.jsonl + jsonl/features/<vid>.npz hold the same videos and sentences
  as the TACoS copy; the jsonl builder with --clip_seconds=0.64 keeps every record."""
  from data_pipelines import build
  from data_pipelines.builders.base import REPORT_FILE
  corpus = sc.generate(TINY_SPEC)
  directory = tiny_release / "jsonl"
  qids = []
  for split, videos in corpus.items():
    lines = [json.loads(line) for line in (directory / f"{split}.jsonl").read_text()
             .splitlines()]
    want = [(v.video_id, s, round(len(v.features) * 0.64, 2),
             [[round(a * 0.64, 2), round(b * 0.64, 2)]])
            for v in videos for (a, b), s in zip(v.spans, v.sentences)]
    assert [(r["vid"], r["query"], r["duration"], r["relevant_windows"])
            for r in lines] == want
    qids += [r["qid"] for r in lines]
    for video in videos:
      with np.load(directory / "features" / f"{video.video_id}.npz") as npz:
        np.testing.assert_array_equal(npz["features"], video.features)
  assert len(set(qids)) == len(qids)
  assert sc.JSONL_CLIP_SECONDS == 0.64

  builder = build.build("jsonl", str(tmp_path), jsonl={
      "annotations": [str(directory / f"{s}.jsonl") for s in sc.SPLITS],
      "features": [str(directory / "features")], "clip_seconds": sc.JSONL_CLIP_SECONDS})
  report = json.loads((builder.data_path / REPORT_FILE).read_text())
  assert report["skipped"] == {} and report["clipped"] == {}
  assert report["kept"] == {split: {"videos": len(videos),
                                    "queries": sum(len(v.sentences) for v in videos)}
                            for split, videos in corpus.items()}
