"""The command line's answers to everyday mistakes, and predict's warnings: a typo'd
config field, a wrong type, an unknown model (before TensorFlow is imported), an
unknown video (before the model is built), bad inputs of `vmr_jax.search` and
`vmr_jax.tools.significance` each end in one line naming the bad value and, where
there is one, the likely intended value, with no traceback; a sentence the model
reads only in part and an empty `;` entry are warned of; CMHN's Predictor ranks equal
Hamming distances as evaluation does."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.cli import command, environment
from tests.conftest import REPO
from tests.models import tiny_config

# main's errors before any data is read, in a process where importing TensorFlow fails.
WITHOUT_TENSORFLOW = ("import runpy, sys; sys.modules['tensorflow'] = None; "
                      "runpy.run_module('vmr_jax.main', run_name='__main__')")


def run(args) -> subprocess.CompletedProcess:
  return subprocess.run(args, cwd=REPO, env=environment(), capture_output=True, text=True,
                        timeout=300)


def error_line(out: subprocess.CompletedProcess) -> str:
  """The one line a failed command ends with (absl's help pointer after a flag error
  aside); fails where it succeeded or printed a traceback."""
  assert out.returncode != 0, out.stdout[-2000:]
  assert "Traceback" not in out.stderr, out.stderr[-3000:]
  lines = [line for line in out.stderr.splitlines()
           if line.strip() and not line.startswith("Pass --helpshort")]
  return lines[-1]


def main_without_tensorflow(tmp_path, *extra) -> subprocess.CompletedProcess:
  """`python -m vmr_jax.main --config=configs/cmhn_synthetic.py` with `extra` flags and
  a data dir holding no dataset."""
  args = command("configs/cmhn_synthetic.py", tmp_path / "workdir",
                 f"--config.data.data_dir={tmp_path / 'no_data'}", *extra)[3:]
  return run([sys.executable, "-c", WITHOUT_TENSORFLOW, *args])


@pytest.mark.parametrize("flag, want", [
    ("--config.train.num_stepz=5",
     "unknown config field train.num_stepz: did you mean train.num_steps?"),
    ("--config.trian.num_steps=5",
     "unknown config field trian.num_steps: did you mean train.num_steps?"),
    ("--config.train.num_steps.x=5", "train.num_steps = "),
    ("--config.train.num_steps=abc", "--config.train.num_steps=abc: invalid literal for int()"),
    ("--config.model=cmhnx", "unknown model 'cmhnx': did you mean 'cmhn'?"),
])
def test_config_mistakes_are_one_line(tmp_path, flag, want):
  assert want in error_line(main_without_tensorflow(tmp_path, flag))


def test_predict_input_mistakes_are_one_line(tmp_path):
  line = error_line(main_without_tensorflow(tmp_path, "--mode=predict", "--video=v",
                                            f"--sentences_file={tmp_path / 'none.txt'}"))
  assert f"--sentences_file {tmp_path / 'none.txt'} is not a readable text file" in line
  line = error_line(main_without_tensorflow(tmp_path, "--mode=predict", "--sentences=a",
                                            f"--features={tmp_path / 'none.npy'}",
                                            "--duration=10"))
  assert f"--features {tmp_path / 'none.npy'} is not a readable .npy file" in line


def test_an_unknown_video_is_named_before_the_model_is_built(tmp_path, tiny_data_dir):
  """The workdir holds no checkpoint: the video is looked up first. An empty `;`
  entry is warned of."""
  import tensorflow_datasets as tfds
  video = next(iter(tfds.as_numpy(tfds.builder("synthetic/tiny", data_dir=str(tiny_data_dir))
                                  .as_dataset(split="test"))))["video_id"].decode()
  data = [f"--config.data.data_dir={tiny_data_dir}", "--config.data.builder_config=tiny",
          "--mode=predict", "--sentences=the person opens the door;;"]
  out = run(command("configs/cmhn_synthetic.py", tmp_path, *data, f"--video={video}x"))
  line = error_line(out)
  assert f"video '{video}x' is not in split 'test'" in line and f"'{video}'" in line
  assert ("warning: --sentences 'the person opens the door;;': skipped the empty entries "
          "2, 3 of 3") in out.stderr
  line = error_line(run(command("configs/cmhn_synthetic.py", tmp_path, *data,
                                f"--video={video}", "--split=tst")))
  assert "split 'tst' is not in synthetic/tiny" in line and "did you mean 'test'?" in line


@pytest.fixture(scope="module")
def evaluated_cmhn(tiny_data_dir, tiny_release, tmp_path_factory):
  """A randomly initialized tiny CMHN (8-bit codes: many equal Hamming distances)
  evaluated on the test split: (pipeline, its prediction records, its export dir)."""
  from vmr_jax import evaluate, export, train
  config = tiny_config("cmhn", tiny_data_dir, tiny_release)
  run_ = train.setup(config)
  workdir = tmp_path_factory.mktemp("cmhn_eval")
  evaluate.Evaluator(run_.model, run_.spec, config, run_.pipeline, run_.mesh).run(
      run_.state.variables, "test", workdir=str(workdir))
  records = [json.loads(line) for line in
             (workdir / "eval" / "test_predictions.jsonl").read_text().splitlines()]
  export.write(str(workdir / "export"), config, run_.state.variables,
               run_.pipeline.vocab.words, run_.pipeline.feature_dim, step=0)
  return run_.pipeline, records, workdir / "export"


def test_cmhn_predictor_breaks_ties_as_evaluation(evaluated_cmhn):
  """Evaluation orders equal Hamming distances by the codes' cosine
  (`cmhn.ranking_score`); `localize` and `search` (so `--mode=predict` and
  `vmr_jax.search`) return its top-5, in its order, for the same video and query."""
  from vmr_jax import Predictor
  pipeline, records, export_dir = evaluated_cmhn
  predictor = Predictor.load(str(export_dir))
  videos = {v: pipeline.video_features("test", v) for v in sorted({r["video"] for r in records})}
  predictor.encode({v: clips for v, (clips, _) in videos.items()},
                   {v: duration for v, (_, duration) in videos.items()})
  tied = 0
  for record in records:
    want = np.array(record["pred"])
    got = predictor.localize(record["video"], [record["sentence"]], 5)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    distances = np.round(-want[:, 2])  # the cosine moves a score by at most 0.25
    tied += len(set(distances)) < len(distances)
  assert tied >= len(records) // 2, (tied, len(records))  # the test is about ties
  for video, (clips, duration) in videos.items():
    predictor.encode({video: clips}, {video: duration})
    for record in [r for r in records if r["video"] == video]:
      found = predictor.search([record["sentence"]], 5)[0]
      np.testing.assert_allclose([[m.start, m.end, m.score] for m in found], record["pred"],
                                 rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["not_an_export", "durations", "wordless", "output",
                                  "features", "junk_features", "junk_npz", "window",
                                  "stride"])
def test_search_input_mistakes_are_one_line(evaluated_cmhn, tiny_release, tmp_path, case):
  _, _, export_dir = evaluated_cmhn
  features = tiny_release / "tacos" / "tall_c3d_features.hdf5"
  (tmp_path / "durations.json").write_text("{not json")
  (tmp_path / "junk.hdf5").write_text("not hdf5")
  (tmp_path / "npz").mkdir()
  (tmp_path / "npz" / "v0.npz").write_text("not npz")
  flags = {"export": export_dir, "features": features, "query": "the person opens the door"}
  flags.update({
      "not_an_export": {"export": tmp_path},
      "durations": {"durations": tmp_path / "durations.json"},
      "wordless": {"query": "..."},
      "output": {"output": tmp_path / "none" / "out.jsonl"},
      "features": {"features": f"{features},{tmp_path / 'none.hdf5'}"},
      "junk_features": {"features": tmp_path / "junk.hdf5"},
      "junk_npz": {"features": tmp_path / "npz"},
      "window": {"window_clips": 0},
      "stride": {"window_clips": 8, "window_stride": 9}}[case])
  want = {"not_an_export": f"{tmp_path} is not a model export",
          "durations": f"--durations {tmp_path / 'durations.json'} is not a readable JSON",
          "wordless": "sentence '...' has no words",
          "output": f"--output {tmp_path / 'none' / 'out.jsonl'}: no such directory",
          "features": f"features {tmp_path / 'none.hdf5'}: no such file or folder",
          "junk_features": f"{tmp_path / 'junk.hdf5'}: not a readable HDF5 file",
          "junk_npz": f"{tmp_path / 'npz' / 'v0.npz'}: video 'v0': not a readable .npz file",
          "window": "--window_clips=0: give a number of clips >= 1",
          "stride": "--window_stride=9: give a number of clips in [1, --window_clips=8]"}[case]
  out = run([sys.executable, "-m", "vmr_jax.search", *(f"--{k}={v}" for k, v in flags.items())])
  assert want in error_line(out)


def test_significance_of_a_search_output_says_what_it_reads(tmp_path):
  path = tmp_path / "search.jsonl"
  path.write_text(json.dumps({"qid": 0, "query": "a", "pred": [["v", 0.0, 1.0, 0.5]]}) + "\n")
  line = error_line(run([sys.executable, "-m", "vmr_jax.tools.significance", str(path)]))
  assert f"{path}: line 1 is not a prediction record (its keys are qid, query, pred)" in line
  assert "--mode=eval's <split>_predictions.jsonl" in line


def test_sentences_read_in_part_are_warned_of_once(capsys):
  from vmr_jax.predictor_inputs import SentenceEncoder
  encoder = SentenceEncoder(["<pad>", "<unk>", "the", "door"], max_words=3)
  long_sentence = " ".join(["the door"] * 1000)
  batch = encoder(["xyzzy plugh", long_sentence, "the door"])
  encoder([long_sentence])  # said already
  assert batch["query_mask"].sum(1).tolist() == [2, 3, 2]
  lines = capsys.readouterr().err.splitlines()
  assert lines == ["warning: sentence 'xyzzy plugh' has no word of the model's vocabulary: "
                   "its moments mean nothing",
                   f"warning: sentence '{long_sentence[:57]}...' has 2000 words: the model "
                   "reads its first 3 (data.max_words)"]
  encoder(["plugh"], warn=False)
  assert not capsys.readouterr().err


def test_wordpiece_sentences_cut_are_warned_of(tmp_path, capsys):
  from vmr_jax.predictor_inputs import SentenceEncoder
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "door"]) + "\n")
  encoder = SentenceEncoder(["<pad>", "<unk>"], max_words=3, wordpiece_vocab=str(vocab),
                            max_wordpiece=4)
  encoder(["the door", "the door the door"])  # 4 and 6 tokens with [CLS] and [SEP]
  assert capsys.readouterr().err.splitlines() == [
      "warning: sentence 'the door the door' has 6 WordPiece tokens: the model reads its "
      "first 4 (data.max_wordpiece)"]
