"""CMHN on ActivityNet Captions (paper 001: L = 256, Adam, lr 1e-3, C3D-PCA 500-d).

  python -m data_pipelines.build activitynet_captions --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/cmhn_activitynet.py --workdir=W \
      --config.data.data_dir=OUT --config.text.bert_dir=/models/bert-base-uncased \
      --config.data.wordpiece_vocab=/models/bert-base-uncased/vocab.txt
"""

from configs import cmhn_common


def get_config():
  config = cmhn_common.get_config()
  config.data.name = "activitynet_captions"
  config.data.num_clips = 64
  config.data.max_queries = 8
  config.data.eval_max_queries = 32  # all of a video's queries: codes once per video
  config.cmhn.code_bits = 256
  config.cmhn.max_kernel = 64
  config.train.learning_rate = 1e-3
  config.train.batch_size = 32
  config.train.num_steps = 20000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  return config
