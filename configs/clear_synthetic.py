"""CLEAR on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once):
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe path follows it).
Exhaustive search instead of Algorithm 1: `--config.clear.search=exhaustive`
(with `--mode=eval`, on a trained workdir).

The paper's BERT is replaced by the synthetic corpus's GloVe-format vectors with a
BiGRU head, and the widths are smaller than the paper's, so that it trains in
minutes on a CPU. TACoS's tree (P = 4, rho = 0.02) over L = 32 units.
"""

from vmr_jax.configs import clear_common, default


READINGS = (clear_common.DEFAULT_READING, "paper")
# `get_config("tiny")`, `("small")`, `("tiny,paper")`: `default.shrink`'s sizes. Tiny
# released: 16 clips pooled to an 8-clip map; small released: 32 clips pooled to a
# 16-clip map of 2D-TAN pooling counts (7, 4), 24 anchors, 85 window positions.
SIZES = {
    "tiny": {"eval.top_k": 10},
    "tiny/paper": {"data.max_queries": 4, "data.eval_max_queries": 0, "text.head_hidden": 8,
                   "clear.hidden": 16, "clear.dim": 16, "clear.fine_hidden": 16},
    "tiny/released": {
        "clear.frame_dim": 8, "clear.scale_layers": (4, 2), "clear.query_hidden": 8,
        "clear.query_layers": 2, "clear.predictor_hidden": 8, "clear.predictor_layers": 2,
        "clear.tcn_channels": (8,), "clear.coarse_dim": 8, "clear.sentence_hidden": 8,
        "clear.sentence_layers": 2, "clear.sentence_fc": 8,
        "clear.coarse_kernels": (1, 2, 4, 8), "clear.coarse_strides": (1, 1, 2, 4),
        "clear.rule_anchor": 3, "train.decay_steps": (8,)},
    "small/paper": {"clear.hidden": 16, "clear.dim": 8, "clear.fine_hidden": 8,
                    "text.head_hidden": 6, "data.num_clips": 12},
    "small/released": {
        "clear.frame_dim": 8, "clear.query_hidden": 6, "clear.predictor_hidden": 8,
        "clear.predictor_layers": 2, "clear.tcn_channels": (12, 8), "clear.coarse_dim": 8,
        "clear.sentence_hidden": 6, "clear.sentence_fc": 8, "clear.query_layers": 2,
        "clear.sentence_layers": 2, "clear.dropout": 0.0, "clear.coarse_kernels": (1, 2, 4, 8),
        "clear.coarse_strides": (1, 1, 2, 4), "clear.rule_anchor": 3,
        "clear.scale_layers": (8, 4), "data.num_clips": 32},
}


def get_config(arg: str = ""):
  size, reading = default.parse_arg(arg, READINGS)
  config = clear_common.get_config(reading)
  default.use_synthetic(config)
  if reading == "released":
    released(config)
  else:
    paper(config)
  default.shrink(config, size, reading, SIZES)
  return config


def paper(config):
  """`clear_synthetic.py:paper`: the paper's structure at demo sizes."""
  config.data.max_queries = 8
  config.data.eval_max_queries = 8  # the synthetic videos have at most 5 sentences
  config.text.head = "bigru"
  config.text.head_hidden = 64
  config.clear.hidden = 64
  config.clear.dim = 64
  config.clear.fine_hidden = 64


def released(config):
  """`clear_synthetic.py:released`: the authors' code's structure at demo sizes, the
  32 clips stretched to 64 and pooled back to a 32-clip map (as 256 to 128 on TACoS),
  width 64, a 4-layer predictor (reach 8 of 32 clips; TACoS's 8 layers reach 16 of
  128), the rule's anchor 11 = (0, 15) as the release's 31 = (0, 63) of 128 clips,
  and the release's milestones (7, 11, 14 of 16 epochs) over the 1,500 steps."""
  config.data.num_clips = 64
  config.clear.update(
      frame_dim=64, scale_layers=(8, 4, 4), query_hidden=64, predictor_hidden=64,
      predictor_layers=4, tcn_channels=(128, 64), coarse_dim=64, sentence_hidden=64,
      sentence_fc=64, coarse_kernels=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32),
      coarse_strides=(1, 1, 1, 1, 1, 1, 1, 2, 2, 4), rule_anchor=11)
  config.train.decay_steps = tuple(round(1500 * e / 16) for e in (7, 11, 14))
