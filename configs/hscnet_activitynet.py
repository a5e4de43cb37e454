"""HSCNet on ActivityNet Captions (paper 003: 256 clips, C = {1, 1, 1}, Adam lr 1e-4,
batch 32; val_2 is the test split).

A video's annotation is its paragraph: `hscnet.max_sentences` = 27 is the largest
paragraph of the public release (train 27, val_1 25, val_2 15 sentences), so no
paragraph is split; a longer one would be cut into consecutive paragraphs of 27.

  python -m data_pipelines.build activitynet_captions --manual_dir=DIR --data_dir=OUT
  python -m vmr_jax.main --config=configs/hscnet_activitynet.py --workdir=W \
      --config.data.data_dir=OUT --config.text.glove_file=/data/glove.840B.300d.txt
"""

from vmr_jax.configs import hscnet_common


def get_config():
  config = hscnet_common.get_config()
  config.data.name = "activitynet_captions"
  config.data.num_clips = 256
  config.data.max_words = 40  # 99% of the release's sentences have <= 35 words
  config.hscnet.max_sentences = 27
  config.train.batch_size = 32
  config.train.num_steps = 30000
  config.train.eval_every = 2000
  config.train.checkpoint_every = 1000
  config.eval.iou_thresholds = (0.3, 0.5, 0.7)  # the paper's Table 1 columns
  return config
