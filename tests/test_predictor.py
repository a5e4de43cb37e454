"""Model exports and the Predictor, on small random-weight models of all five kinds
(no dataset): the export restores every variable; encode / localize / search agree
with the model's own decode and with each other, and do not recompile for a shape
seen before; corpus search is the same on 1 and 4 devices and on 2 processes of 2 devices
holding half the collection each (the two code paths: CMHN's packed codes over a
shard_map, FIAN's whole model over data-sharded batches)
and runs without TensorFlow; a BERT config exports; the search command and
the corpus metrics; the TF-free batch rules equal the input pipeline's."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.cli import Processes, environment
from tests.conftest import REPO
from tests.models import FEATURE_DIM, VARIANTS, VOCAB, small_model_config

# One xdist worker for the module: each model's export is made once.
pytestmark = pytest.mark.xdist_group("predictor")
WORDS = ["<pad>", "<unk>"] + [f"w{i}" for i in range(VOCAB - 2)]
SENTENCES = ["w3 w4 w5", "w7 w8 w2 w9"]


def write_export(directory, model: str):
  """An export of `small_model_config(model)`'s random initialization (CMHN's with
  `short_videos = "pad"`); its variables."""
  from vmr_jax import export, registry, train
  from vmr_jax.tools.random_batch import random_batch
  config = small_model_config(model)
  if config.model == "cmhn":  # short videos padded and masked: candidates past them invalid
    config.data.short_videos = "pad"
  built = registry.for_config(config).create(config, registry.DataInfo(FEATURE_DIM, WORDS, None))
  batch = random_batch(config, FEATURE_DIM, VOCAB, np.random.default_rng(0))
  variables = jax.tree.map(np.asarray, train.init_variables(built, batch, config))
  export.write(str(directory), config, variables, WORDS, FEATURE_DIM, step=3)
  return variables


def collection(num_videos: int, seed: int = 1):
  """`num_videos` random videos of 5 to 29 clips: features, durations."""
  rng = np.random.default_rng(seed)
  features = {f"v{i}": rng.normal(size=(int(rng.integers(5, 30)), FEATURE_DIM)
                                  ).astype(np.float32) for i in range(num_videos)}
  return features, {v: 10.0 + 3 * i for i, v in enumerate(features)}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
  """model -> (export dir, written variables), made on first use."""
  made = {}

  def get(model):
    if model not in made:
      directory = tmp_path_factory.mktemp("export") / model.replace("/", "_")
      made[model] = directory, write_export(directory, model)
    return made[model]
  return get


@pytest.mark.parametrize("model", VARIANTS)
def test_predictor(exports, model):
  from vmr_jax import Predictor, evaluate, predictor_inputs
  directory, variables = exports(model)
  predictor = Predictor.load(str(directory))
  restored = predictor.exported.variables
  assert jax.tree.structure(restored) == jax.tree.structure(variables)
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(variables)):
    np.testing.assert_array_equal(got, want)
  assert predictor.exported.step == 3 and predictor.exported.words == WORDS
  features, durations = collection(5)  # v3 has 11 clips, fewer than the models' 16
  predictor.encode(features, durations)

  found = predictor.localize("v3", SENTENCES, top_n=3)
  assert len(found) == len(SENTENCES)
  for moments in found:
    assert moments.shape[1] == 3 and 1 <= len(moments) <= 3
    assert np.all(np.diff(moments[:, 2]) <= 0)
    assert np.all((0 <= moments[:, 0]) & (moments[:, 0] < moments[:, 1])
                  & (moments[:, 1] <= durations["v3"] + 1e-4))
  if predictor.spec.retrieval is not None:
    # Retrieval models split the forward pass into a video side (encode) and a query
    # side: the same scores as the whole model's forward pass and decode.
    config = predictor.config
    clips, mask = predictor_inputs.resample_clips(features["v3"], config.data.num_clips,
                                         config.data.short_videos)
    batch = predictor_inputs.video_level(clips[None], mask[None], np.array([durations["v3"]]),
                                predictor.sentence_encoder(SENTENCES), np.ones(1, bool))
    predict = evaluate.make_predict_fn(predictor.exported.model, predictor.spec, config)
    ranked = np.asarray(jax.jit(predict)(restored, batch)[0])[0]
    for moments, want in zip(found, ranked):
      np.testing.assert_allclose(moments, predictor._nms(want, 3), rtol=1e-5, atol=1e-6)

  hits = predictor.search(SENTENCES, top_n=4)
  # FVMR: NMS (IoU 0.5) within a video may leave fewer of the collection's
  # max(eval.top_k, top_n) = 6 best cells than top_n.
  assert all(len(h) == 4 if model != "fvmr" else 1 <= len(h) <= 4 for h in hits)
  for moments in hits:
    scores = [m.score for m in moments]
    assert scores == sorted(scores, reverse=True)
    assert all(m.video_id in features for m in moments)
  if model != "hscnet":  # HSCNet grounds a paragraph in localize, a sentence in search
    localized = [predictor.localize(v, SENTENCES, 1) for v in features]
    for s, moments in enumerate(hits):  # the collection's best is a video's best
      assert moments[0].score == pytest.approx(max(found[s][0, 2] for found in localized),
                                               abs=1e-6)

  traces = dict(predictor.traces)
  predictor.localize("v1", ["w9 w10", "w11"], top_n=3)  # shapes seen: no new trace
  predictor.search(["w12 w13", "w2"], top_n=4)
  assert dict(predictor.traces) == traces


def test_bad_input_is_named(exports):
  from vmr_jax import Predictor
  predictor = Predictor.load(str(exports("cmhn")[0]))
  with pytest.raises(RuntimeError, match="encode"):
    predictor.search(SENTENCES)
  with pytest.raises(ValueError, match="'v0'.*features must be"):
    predictor.encode({"v0": np.zeros((4, FEATURE_DIM + 1))}, {"v0": 3.0})
  with pytest.raises(KeyError, match="'v0' has no duration"):
    predictor.encode({"v0": np.zeros((4, FEATURE_DIM))}, {})
  predictor.encode(*collection(2))
  with pytest.raises(KeyError, match="'v9' is not in the encoded collection"):
    predictor.localize("v9", SENTENCES)
  with pytest.raises(ValueError, match="has no words"):
    predictor.search(["..."])
  with pytest.raises(FileNotFoundError, match="export.json is missing"):
    Predictor.load(str(exports("cmhn")[0] / "variables"))


SHARDED = """
import json, sys
sys.modules["tensorflow"] = None  # the export, predictor and search never import it
sys.path.insert(0, {repo!r})
flags = dict(arg[2:].split("=", 1) for arg in sys.argv[1:])  # tests.cli.Processes' flags
from vmr_jax import Predictor, distributed
if flags:
  distributed.initialize(flags["coordinator_address"], int(flags["num_processes"]),
                         int(flags["process_id"]), timeout_s=int(flags["connect_timeout"]))
import jax
import numpy as np
videos = np.load({videos!r})
names = sorted(videos.files, key=lambda v: int(v[1:]))
durations = {{v: 10.0 + i for i, v in enumerate(names)}}
share = -(-len(names) // jax.process_count())  # process p: videos [p * share, (p + 1) * share)
mine = names[jax.process_index() * share:(jax.process_index() + 1) * share]
features = {{v: videos[v] for v in mine}}
out = {{"devices": jax.device_count(), "processes": jax.process_count()}}
for model, directory in {exports!r}.items():
  predictor = Predictor.load(directory, search_backend="jax")  # make_corpus_top_k's shards
  predictor.encode(features, durations)
  out[model] = [[[m.video_id, m.start, m.end, m.score] for m in hits]
                for hits in predictor.search({sentences!r}, top_n=5)]
print(json.dumps(out))
"""


def test_search_is_the_same_on_one_and_four_devices(exports, tmp_path):
  script, videos = tmp_path / "sharded.py", tmp_path / "videos.npz"
  np.savez(videos, **collection(7)[0])  # 7 videos: padded to 8 rows on 4 devices
  script.write_text(SHARDED.format(repo=str(REPO), videos=str(videos), sentences=SENTENCES,
                                   exports={m: str(exports(m)[0])
                                            for m in ("cmhn", "fian")}))
  results = []
  for devices in (1, 4):
    out = subprocess.run([sys.executable, str(script)], cwd=REPO, env=environment(devices),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results.append(json.loads(out.stdout.strip().splitlines()[-1]))
  # Two processes of 2 devices, each encoding its part of the collection (4 and 3 videos).
  processes = Processes([sys.executable, str(script)], tmp_path / "logs")
  processes.check()
  results += [json.loads(processes.output(i).strip().splitlines()[-1]) for i in (0, 1)]
  assert [(r.pop("devices"), r.pop("processes")) for r in results] == [
      (1, 1), (4, 1), (4, 2), (4, 2)]
  one = results[0]
  for other in results[1:]:
    for model in one:  # FIAN regresses times: other batch shapes, other float rounding
      for a, b in zip(one[model], other[model]):
        assert [m[0] for m in a] == [m[0] for m in b], model
        np.testing.assert_allclose([m[1:] for m in a], [m[1:] for m in b], rtol=1e-5,
                                   atol=1e-5, err_msg=model)
  assert all(len(hits) == 5 for hits in one["cmhn"])


@pytest.mark.parametrize("rule", ["stretch", "pad"])
def test_resample_clips_matches_the_input_pipeline(rule):
  from data_pipelines.input_pipeline import resample_features
  from vmr_jax.predictor_inputs import resample_clips
  rng = np.random.default_rng(0)
  for n in (1, 5, 16, 17, 40):
    feats = rng.normal(size=(n, 3)).astype(np.float32)
    want, want_mask = (x.numpy() for x in resample_features(feats, 16, rule))
    got, got_mask = resample_clips(feats, 16, rule)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got_mask, want_mask)


def test_resample_clips_at_a_rate_matches_the_input_pipeline():
  from data_pipelines.input_pipeline import resample_features
  from vmr_jax.predictor_inputs import resample_clips
  rng = np.random.default_rng(1)
  for n, duration in ((40, 10.0), (40, 9.9995), (7, 13.2), (100, 3.0), (30, 99.0)):
    feats = rng.normal(size=(n, 3)).astype(np.float32)
    want, want_mask = (x.numpy() for x in resample_features(
        feats, 16, "stretch", np.float32(duration), 1.0))
    got, got_mask = resample_clips(feats, 16, "stretch", duration, 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got_mask, want_mask)
    assert got_mask.sum() == min(16, int(np.ceil(round(duration, 2))))


def test_packed_hamming_distance_equals_the_sign_codes():
  from vmr_jax.layers.hashing import hamming_distance, pack_signs, packed_hamming_distance
  from vmr_jax.layers.hashing import sign
  rng = np.random.default_rng(0)
  for bits in (8, 32, 45):
    a, b = (rng.normal(size=(2, n, bits)).astype(np.float32) for n in (6, 4))
    a[0, 0, 0] = 0.0  # sign(0) = +1
    want = hamming_distance(sign(a), sign(b))
    got = packed_hamming_distance(pack_signs(a)[:, :, None], pack_signs(b)[:, None])
    np.testing.assert_array_equal(got, want)


def test_corpus_metrics_by_brute_force():
  from vmr_jax.metrics import corpus_metrics
  rng = np.random.default_rng(0)
  videos = ["a", "b", "c"]
  gts = np.sort(rng.uniform(0, 10, (20, 2)), axis=1)
  gt_videos = list(rng.choice(videos, 20))
  predictions = [[(str(rng.choice(videos)), *np.sort(rng.uniform(0, 10, 2)), 0.0)
                  for _ in range(6)] for _ in range(20)]
  predictions[0] = [(gt_videos[0], *gts[0])]  # an exact hit at rank 1
  predictions[1] = []  # nothing found
  got = corpus_metrics(predictions, gt_videos, gts, (1, 5), (0.3, 0.7))
  for k in (1, 5):
    for m in (0.3, 0.7):
      hits = 0
      for ranked, video, (gs, ge) in zip(predictions, gt_videos, gts):
        for v, s, e, *_ in ranked[:k]:
          inter = max(0.0, min(e, ge) - max(s, gs))
          if v == video and inter / ((e - s) + (ge - gs) - inter) >= m:
            hits += 1
            break
      assert got[f"corpus R@{k},IoU={m}"] == pytest.approx(hits / 20)
    assert got[f"video R@{k}"] == pytest.approx(
        np.mean([video in [p[0] for p in ranked[:k]]
                 for ranked, video in zip(predictions, gt_videos)]))
  assert got["corpus R@1,IoU=0.7"] >= 1 / 20


def test_search_command(exports, tmp_path):
  """`python -m vmr_jax.search` on an HDF5 file (durations from its attributes), and
  --evaluate on an ActivityNet-format split file: the printed corpus metrics are
  those of its --output file."""
  import h5py
  features, durations = collection(5)
  with h5py.File(tmp_path / "features.hdf5", "w") as f:
    for video, feats in features.items():
      f[video] = feats
      f[video].attrs["duration"] = durations[video]
  split = {v: {"duration": durations[v], "timestamps": [[1.0, 4.0], [2.0, 9.0]],
               "sentences": SENTENCES} for v in ("v1", "v3")}
  (tmp_path / "split.json").write_text(json.dumps(split))
  base = [sys.executable, "-m", "vmr_jax.search", f"--export={exports('cmhn')[0]}",
          f"--features={tmp_path / 'features.hdf5'}"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run(base + ["--query=w3 w4", "--query=w9", "--top_n=3"], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.splitlines()[0] == "w3 w4" and " s   score " in out.stdout
  out = subprocess.run(base + [f"--annotations={tmp_path / 'split.json'}", "--evaluate",
                               "--top_n=5", f"--output={tmp_path / 'out.jsonl'}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "4 queries, 2 videos" in out.stdout
  from vmr_jax.metrics import corpus_metrics
  records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
  assert [r["query"] for r in records] == SENTENCES * 2
  want = corpus_metrics([r["pred"] for r in records], [r["vid"] for r in records],
                        np.array([r["relevant_windows"][0] for r in records]), (1, 5),
                        (0.5, 0.7))
  for name, value in want.items():
    assert f"{name:24s} {100 * value:6.2f}" in out.stdout


TINY_BERT = {"model_type": "bert", "vocab_size": 120, "hidden_size": 16,
             "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 24,
             "max_position_embeddings": 16}


def test_bert_export(tmp_path, tiny_release):
  """A BERT config's export holds the checkpoint's config.json and WordPiece vocab and
  loads without the checkpoint (random weights of a tiny BERT here)."""
  import shutil
  from vmr_jax import Predictor, export, registry, train
  from vmr_jax.tools.random_batch import random_batch
  bert_dir = tmp_path / "bert"
  bert_dir.mkdir()
  (bert_dir / "config.json").write_text(json.dumps(TINY_BERT))
  shutil.copy(tiny_release / "vocab.txt", bert_dir / "vocab.txt")
  config = small_model_config("cmhn")
  config.text.encoder, config.text.vectors, config.text.bert_dir = "bert", "export", str(bert_dir)
  config.data.wordpiece_vocab, config.data.max_wordpiece = str(bert_dir / "vocab.txt"), 12
  model = registry.get("cmhn").create(config, registry.DataInfo(FEATURE_DIM, WORDS, None))
  batch = random_batch(config, FEATURE_DIM, VOCAB, np.random.default_rng(0))
  batch["query_wordpiece"] %= TINY_BERT["vocab_size"]
  variables = jax.tree.map(np.asarray, train.init_variables(model, batch, config))
  export.write(str(tmp_path / "export"), config, variables, WORDS, FEATURE_DIM, step=1)
  shutil.rmtree(bert_dir)  # the export must not need it
  assert sorted(os.listdir(tmp_path / "export" / "bert")) == ["config.json", "vocab.txt"]
  predictor = Predictor.load(str(tmp_path / "export"))
  for got, want in zip(jax.tree.leaves(predictor.exported.variables),
                       jax.tree.leaves(variables)):
    np.testing.assert_array_equal(got, want)
  assert "query_wordpiece" in predictor.sentence_encoder(["the person opens the door"])
  predictor.encode(*collection(3))
  assert len(predictor.search(["the person opens the door"], top_n=3)[0]) == 3


@pytest.mark.parametrize("model", ["cmhn", "fian"])
def test_collections_of_several_batches(exports, model):
  """7 videos in batches of 2 (the last one padded) rank as in one batch of 7."""
  from vmr_jax import Predictor
  predictor = Predictor.load(str(exports(model)[0]))
  features, durations = collection(7)
  predictor.encode(features, durations)
  whole = predictor.search(SENTENCES, top_n=6)
  predictor.config.eval.batch_size = 2
  predictor.encode(features, durations)
  assert predictor.chunk == 2
  for a, b in zip(whole, predictor.search(SENTENCES, top_n=6)):
    assert [m.video_id for m in a] == [m.video_id for m in b]
    np.testing.assert_allclose([(m.start, m.end, m.score) for m in a],
                               [(m.start, m.end, m.score) for m in b], rtol=1e-5, atol=1e-5)


def test_export_replaces_only_an_export(tmp_path):
  from vmr_jax import export
  config, variables = small_model_config("cmhn"), {"params": {"w": np.zeros(2)}}
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="not a model export"):
    export.write(str(tmp_path), config, variables, WORDS, FEATURE_DIM, step=1)
  assert (tmp_path / "notes.txt").exists()
  for step in (1, 2):  # an export is replaced
    export.write(str(tmp_path / "export"), config, variables, WORDS, FEATURE_DIM, step)
  assert export.load(str(tmp_path / "export")).step == 2


def test_padded_clips_hold_no_candidates(exports):
  """CMHN pads short videos (`short_videos = "pad"`): ranking every candidate, none
  reaches past a video's clips, in localize and in search."""
  from vmr_jax import Predictor, export
  from vmr_jax.models import cmhn
  exported = export.load(str(exports("cmhn")[0]))
  exported.config.eval.top_k = 10_000  # every candidate
  predictor = Predictor(exported)
  features, durations = collection(5)
  predictor.encode(features, durations)
  spans = cmhn.candidate_spans(exported.config.data.num_clips, exported.config.cmhn)
  real = int((spans[:, 1] <= len(features["v3"])).sum())  # v3: 11 of 16 clips
  assert 0 < real < len(spans)
  for moments in predictor.localize("v3", SENTENCES, top_n=10_000):
    assert len(moments) == real and moments[:, 1].max() <= durations["v3"] + 1e-4
  for moments in predictor.search(SENTENCES, top_n=10_000):
    assert all(m.end <= durations[m.video_id] + 1e-4 for m in moments)


def test_faiss_search_equals_jax(exports):
  """CMHN's search on faiss (`search_backend`) returns JAX's moments; "auto" takes faiss
  on a CPU; a model without a host index refuses "faiss"."""
  pytest.importorskip("faiss")
  from vmr_jax import Predictor
  features, durations = collection(9)
  found = {}
  for backend in ("jax", "faiss", "auto"):
    predictor = Predictor.load(str(exports("cmhn")[0]), search_backend=backend)
    assert predictor.host_search == (backend != "jax")
    predictor.encode(features, durations)
    found[backend] = predictor.search(SENTENCES, top_n=8)
  for moments in (found["faiss"], found["auto"]):
    for want, got in zip(found["jax"], moments):
      assert len(got) == len(want) == 8
      assert [(m.video_id, m.start, m.end) for m in got] == [
          (m.video_id, m.start, m.end) for m in want]
      np.testing.assert_allclose([m.score for m in got], [m.score for m in want], rtol=1e-6)
  with pytest.raises(ValueError, match="fvmr has no faiss index"):
    Predictor.load(str(exports("fvmr")[0]), search_backend="faiss")
  with pytest.raises(ValueError, match="search_backend must be one of"):
    Predictor.load(str(exports("cmhn")[0]), search_backend="gpu")
