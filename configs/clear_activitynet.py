"""CLEAR on ActivityNet Captions (paper 000: C3D-PCA 500-d, P = 2, Adam, batch 32,
lr 5e-4, rho 0.05); by default the authors' code (CSUN_A);
`configs/clear_activitynet.py:paper`, the paper's text.

  python -m data_pipelines.build activitynet_captions --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/clear_activitynet.py --workdir=W \
      --config.data.data_dir=OUT --config.text.glove_file=/models/glove.840B.300d.txt
  python -m vmr_jax.main --config=configs/clear_activitynet.py:paper --workdir=W \
      --config.data.data_dir=OUT --config.text.bert_dir=/models/bert-base-uncased \
      --config.data.wordpiece_vocab=/models/bert-base-uncased/vocab.txt
"""

from vmr_jax.configs import clear_common


def get_config(reading: str = clear_common.DEFAULT_READING):
  config = clear_common.get_config(reading)
  config.data.name = "activitynet_captions"
  if reading == "released":  # CSUN_A
    config.clear.update(
        frame_pool=4, scale_layers=(16, 8, 8), predictor_kernel=9, predictor_layers=4,
        tcn_channels=(448, 416, 384, 352, 320, 288, 256), tcn_kernel=7, coarse_dim=256,
        coarse_kernels=(1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 19, 23, 28, 34, 41, 50,
                        61, 75, 92, 113, 139, 171, 211),
        coarse_strides=(1,) * 13 + (2, 2, 3, 4, 4, 6, 7, 9, 11, 13, 17, 21), rho=0.05)
    # 6 epochs, milestones 3, 5; 37,421 train pairs = 1,170 steps an epoch.
    config.train.learning_rate = 5e-4
    config.train.num_steps = 6 * 1170
    config.train.decay_steps = (3 * 1170, 5 * 1170)
    config.train.eval_every = config.train.checkpoint_every = 1170
    return config
  config.data.num_clips = 64
  config.data.max_queries = 8
  config.clear.tree_layers = 2
  config.clear.rho = 0.05
  config.train.batch_size = 32
  config.train.learning_rate = 5e-4
  config.train.num_steps = 20000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
