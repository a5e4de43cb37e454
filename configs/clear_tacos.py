"""CLEAR on TACoS (paper 000: C3D 4096-d, P = 4, Adam, batch 16, lr 1e-3, rho 0.02);
by default the authors' code (CSUN_T); `configs/clear_tacos.py:paper`, the paper's text.

  python -m data_pipelines.build tacos --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/clear_tacos.py --workdir=W \
      --config.data.data_dir=OUT --config.text.glove_file=/models/glove.840B.300d.txt
  python -m vmr_jax.main --config=configs/clear_tacos.py:paper --workdir=W \
      --config.data.data_dir=OUT --config.text.bert_dir=/models/bert-base-uncased \
      --config.data.wordpiece_vocab=/models/bert-base-uncased/vocab.txt

The paper reading's L = 128 units give a fine map of 8,256 candidates per query, so
a video's queries are evaluated 16 at a time.
"""

from vmr_jax.configs import clear_common


def get_config(reading: str = clear_common.DEFAULT_READING):
  config = clear_common.get_config(reading)
  config.data.name = "tacos"
  if reading == "released":
    # CSUN_T: 16 epochs, milestones 7, 11, 14; 9,790 train pairs = 306 steps an epoch.
    config.train.num_steps = 16 * 306
    config.train.decay_steps = (7 * 306, 11 * 306, 14 * 306)
    config.train.eval_every = config.train.checkpoint_every = 306
    return config
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
