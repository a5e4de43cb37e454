"""FVMR on ActivityNet Captions (paper 002: C3D features, 2D-TAN's 64-clip map).

2D-TAN's ActivityNet schedule (16, 8, 8) gives 1,104 cells. As for TACoS
(`configs/fvmr_tacos.py`), pass `--config.data.srl_file` and
`--config.text.glove_file`.
"""

from vmr_jax.configs import fvmr_common


def get_config(frame_layer: str = "paper"):
  config = fvmr_common.get_config(frame_layer)
  config.data.name = "activitynet_captions"
  fvmr_common.set_map_clips(config, 64)
  config.data.eval_max_queries = 32
  config.fvmr.scale_layers = (16, 8, 8)
  config.eval.batch_size = 16
  config.train.num_steps = 50000
  config.train.eval_every = 2000
  config.train.checkpoint_every = 2000
  return config
