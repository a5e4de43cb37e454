"""FVMR on Charades-STA (paper 002, Table 4's C3D row; `--config.data.builder_config`
vgg or i3d for the others). 2D-TAN's 16-clip map: schedule (16,), all 136 spans.

Charades-STA has no validation split: the test split picks the best checkpoint, as
the papers' tables do. A batch is 16 videos x 2 queries (32 pairs). As for TACoS
(`configs/fvmr_tacos.py`), pass `--config.data.srl_file` and
`--config.text.glove_file`.
"""

from vmr_jax.configs import fvmr_common


def get_config(frame_layer: str = "paper"):
  config = fvmr_common.get_config(frame_layer)
  config.data.name = "charades_sta"
  config.data.builder_config = "c3d"
  fvmr_common.set_map_clips(config, 16)
  config.data.max_queries = 2
  config.data.eval_max_queries = 16
  config.fvmr.scale_layers = (16,)
  config.train.batch_size = 16
  config.eval.batch_size = 32
  config.eval.val_split = "test"
  config.train.num_steps = 10000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
