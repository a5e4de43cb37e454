"""HSCNet on TACoS (paper 003: 512 clips, C = {3, 3, 3}, Adam lr 1e-4, batch 16).

Paragraphs: the TACoS release (2D-TAN's JSON) lists a video's ~130 sentences as
one description after another, each annotator's in time order. A paragraph starts
wherever a sentence starts before the one it follows (`data.paragraphs = "release"`):
train / val / test give 1,263 / 505 / 444 paragraphs of 7.75 / 8.78 / 9.01
sentences on average (the paper: 8.75), at most 15, so `hscnet.max_sentences` = 15
splits none. Every sentence is evaluated once.

  python -m data_pipelines.build tacos --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/hscnet_tacos.py --workdir=W \
      --config.data.data_dir=OUT --config.text.glove_file=/data/glove.840B.300d.txt
"""

from vmr_jax.configs import hscnet_common


def get_config():
  config = hscnet_common.get_config()
  config.data.name = "tacos"
  config.data.num_clips = 512
  config.data.paragraphs = "release"
  config.hscnet.max_sentences = 15
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
