"""FVMR on TACoS (paper 002: C3D features, 2D-TAN's 128-clip map).

2D-TAN's TACoS schedule (16, 8, 8, 8) gives 2,548 cells. Trees come from an AllenNLP
SRL predictions file of the dataset's sentences:

  python -m data_pipelines.build tacos --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/fvmr_tacos.py --workdir=W \
      --config.data.data_dir=OUT --config.data.srl_file=tacos_srl.jsonl \
      --config.text.glove_file=/data/glove.840B.300d.txt
"""

from vmr_jax.configs import fvmr_common


def get_config(frame_layer: str = "paper"):
  config = fvmr_common.get_config(frame_layer)
  config.data.name = "tacos"
  fvmr_common.set_map_clips(config, 128)
  config.data.eval_max_queries = 64
  config.fvmr.scale_layers = (16, 8, 8, 8)
  config.train.num_steps = 30000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
