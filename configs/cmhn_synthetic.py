"""CMHN on the synthetic benchmark: the demo, a few minutes on 2 CPU cores.

Build the data first (once):
  python -m data_pipelines.build synthetic --data_dir=~/tensorflow_datasets
Another data dir: `--config.data.data_dir=DIR` (the GloVe path follows it).

The paper's BERT is replaced by the synthetic corpus's GloVe-format vectors with a
BiGRU head (a BERT-base forward pass alone would take minutes per epoch on a CPU);
`--config.text.encoder=bert --config.text.bert_dir=...` runs the paper's encoder.
Smaller widths and code length than the paper's for the same reason.
The authors' code's reading (the default); `--config=configs/cmhn_synthetic.py:paper`
trains the paper's.
"""

from vmr_jax.configs import cmhn_common, default


def get_config(reading: str = cmhn_common.DEFAULT_READING):
  config = cmhn_common.get_config(reading)
  default.use_synthetic(config)
  config.data.max_queries = 8
  config.data.eval_max_queries = 8  # the synthetic videos have at most 5 sentences
  config.text.trainable = True
  config.text.head = "bigru"
  config.text.head_hidden = 64
  config.cmhn.hidden = 64
  config.cmhn.code_bits = 32
  config.cmhn.kernels = tuple(range(1, 13))  # every size up to 12 of the 32 clips
  config.cmhn.strides = (1,) * 12
  config.cmhn.tcn_channels = (128, 64)  # the released reading's, shrunk like `hidden`
  config.cmhn.query_hidden = (64, 64)
  return config
