"""CLEAR on ActivityNet Captions (paper 000: C3D-PCA 500-d, P = 2, Adam, batch 32,
lr 5e-4, rho 0.05).

  python -m data_pipelines.build activitynet_captions --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/clear_activitynet.py --workdir=W \
      --config.data.data_dir=OUT --config.text.bert_dir=/models/bert-base-uncased \
      --config.data.wordpiece_vocab=/models/bert-base-uncased/vocab.txt
"""

from configs import clear_common


def get_config():
  config = clear_common.get_config()
  config.data.name = "activitynet_captions"
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
