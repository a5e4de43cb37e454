"""HSCNet settings shared by its dataset configs (paper 003, Sec. 4.2).

A training/evaluation example is one paragraph (`data.paragraphs`): by default a
video's sentences sorted by start time and cut into consecutive paragraphs of at
most `hscnet.max_sentences` (= `data.max_queries`; evaluation cuts them the same
way, so every sentence is evaluated exactly once); TACoS takes the release's own
paragraphs (`configs/hscnet_tacos.py`). Word vectors: GloVe (`text.glove_file`,
required; `text.vectors=random` for random ones), frozen, no recurrent head.
"""

import ml_collections

from vmr_jax.configs import default


def get_config():
  config = default.get_config()
  config.model = "hscnet"
  config.hscnet = ml_collections.ConfigDict({
      "max_sentences": 9,  # sentences per paragraph
      "hidden": 256,  # D
      "num_heads": 8,  # not given in the paper
      "mlp_dim": 512,  # feed-forward width of every layer (not given)
      "dropout": 0.1,  # (not given)
      "video_layers": 3,  # video self-attention layers (Sec. 3.2)
      "text_layers": 3,  # text self-attention layers (Sec. 3.2)
      "word_layers": 1,  # C1
      "sentence_layers": 1,  # C2
      "paragraph_layers": 1,  # C3
      "tau": 0.2,  # aggregation temperature (Eq. 5)
      "sigma_init": 0.1,  # initial sigma of Eq. 1, learned (not given)
  })
  config.data.batch_kind = "video"
  config.data.paragraphs = "time"
  config.data.max_queries = config.hscnet.get_ref("max_sentences")
  config.data.eval_max_queries = 0  # evaluation paragraphs = training paragraphs
  config.data.max_words = 24
  config.text.encoder = "glove"
  config.text.trainable = False
  config.text.head = ""
  config.train.optimizer = "adam"  # no weight decay
  config.train.learning_rate = 1e-4
  config.eval.top_k = 1  # one span per sentence
  config.eval.recall_at = (1,)
  config.eval.best_metric = "mIoU"
  return config
