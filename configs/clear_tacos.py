"""CLEAR on TACoS (paper 000: C3D 4096-d, P = 4, Adam, batch 16, lr 1e-3, rho 0.02).

L = 128 units: the fine map has 8,256 candidates per query, so a video's queries are
evaluated 16 at a time.

  python -m data_pipelines.build tacos --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/clear_tacos.py --workdir=W \
      --config.data.data_dir=OUT --config.text.bert_dir=/models/bert-base-uncased \
      --config.data.wordpiece_vocab=/models/bert-base-uncased/vocab.txt
"""

from configs import clear_common


def get_config():
  config = clear_common.get_config()
  config.data.name = "tacos"
  config.data.num_clips = 128
  config.data.max_queries = 16
  config.clear.tree_layers = 4
  config.clear.rho = 0.02
  config.train.batch_size = 16
  config.train.learning_rate = 1e-3
  config.train.num_steps = 20000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  config.eval.batch_size = 16
  return config
