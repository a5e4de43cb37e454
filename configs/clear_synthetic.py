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

from configs import clear_common, default


def get_config():
  config = clear_common.get_config()
  default.use_synthetic(config)
  config.data.max_queries = 8
  config.data.eval_max_queries = 8  # the synthetic videos have at most 5 sentences
  config.text.head = "bigru"
  config.text.head_hidden = 64
  config.clear.hidden = 64
  config.clear.dim = 64
  config.clear.fine_hidden = 64
  return config
