"""CMHN on ActivityNet Captions (paper 001: L = 256, Adam, lr 1e-3, C3D-PCA 500-d).

  python -m data_pipelines.build activitynet_captions --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/cmhn_activitynet.py --workdir=W \
      --config.data.data_dir=OUT --config.text.bert_dir=/models/bert-base-uncased \
      --config.data.wordpiece_vocab=/models/bert-base-uncased/vocab.txt
"""

from vmr_jax.configs import cmhn_common


# 64 clips of ~1.9 s: every size to 8 clips at stride 1, then up to the whole video at
# strides ~k/8 (ActivityNet's moments average a third of the video): 681 candidates,
# 26M weights at width 256.
KERNELS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64)
STRIDES = (1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8)
# activitynet_captions.py's, in clips of 1 s, and the released reading's clips by
# default (`cmhn_common.CLIP_RULES`): its 1 clip per second (no ActivityNet-shaped data
# has measured it; `:released,fixed` reads 64 clips).
RELEASED_CLIPS = "seconds"
RELEASED_KERNELS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 19, 23, 28, 34, 41, 50, 61, 75,
                    92, 113, 139, 171, 211)
RELEASED_STRIDES = (1,) * 13 + (2, 2, 3, 4, 4, 6, 7, 9, 11, 13, 17, 21)


def get_config(arg: str = cmhn_common.DEFAULT_READING):
  """`arg`: `cmhn_common.parse_arg`'s READING[,CLIPS]."""
  reading, clips = cmhn_common.parse_arg(arg, RELEASED_CLIPS)
  config = cmhn_common.get_config(reading)
  config.data.name = "activitynet_captions"
  config.data.num_clips = 64
  config.data.max_queries = 8
  config.data.eval_max_queries = 32  # all of a video's queries: codes once per video
  config.cmhn.code_bits = 256
  config.cmhn.kernels, config.cmhn.strides = KERNELS, STRIDES
  config.train.learning_rate = 1e-3
  # activitynet_captions.py: 7 levels of kernel 7, lr 1.3e-3, and 1 clip per second
  # (padded to the longest video, 755.1 s) with its candidate sizes in seconds.
  if reading == "released":
    config.cmhn.update(tcn_channels=(448, 416, 384, 352, 320, 288, 256), tcn_kernel=7)
    config.train.learning_rate = 1.3e-3
    config.eval.best_metric = "R@1,IoU=0.7"
  if clips == "seconds":
    cmhn_common.read_seconds(config, 756, RELEASED_KERNELS, RELEASED_STRIDES)
  config.train.batch_size = 32
  config.train.num_steps = 20000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
