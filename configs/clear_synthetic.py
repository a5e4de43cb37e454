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


def get_config(reading: str = clear_common.DEFAULT_READING):
  config = clear_common.get_config(reading)
  default.use_synthetic(config)
  if reading == "released":
    return released(config)
  config.data.max_queries = 8
  config.data.eval_max_queries = 8  # the synthetic videos have at most 5 sentences
  config.text.head = "bigru"
  config.text.head_hidden = 64
  config.clear.hidden = 64
  config.clear.dim = 64
  config.clear.fine_hidden = 64
  return config


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
  return config
