"""HSCNet on TACoS (paper 003: 512 clips, C = {3, 3, 3}, Adam lr 1e-4, batch 16).

The TACoS release (2D-TAN's JSON) has no paragraph grouping: its ~148 sentences per
video come from several annotators. A video's sentences are sorted by start time
and split into consecutive paragraphs of at most `hscnet.max_sentences` = 9 (the
paper's paragraphs average 8.75 sentences); every sentence is evaluated once.

  python -m data_pipelines.build tacos --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/hscnet_tacos.py --workdir=W \
      --config.data.data_dir=OUT --config.text.glove_file=/data/glove.840B.300d.txt
"""

from configs import hscnet_common


def get_config():
  config = hscnet_common.get_config()
  config.data.name = "tacos"
  config.data.num_clips = 512
  config.hscnet.word_layers = 3
  config.hscnet.sentence_layers = 3
  config.hscnet.paragraph_layers = 3
  config.train.batch_size = 16
  config.train.num_steps = 30000
  config.train.eval_every = 1000
  config.train.checkpoint_every = 1000
  config.eval.batch_size = 16
  config.eval.iou_thresholds = (0.1, 0.3, 0.5)  # the paper's Table 1 columns
  return config
