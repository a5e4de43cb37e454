"""CMHN settings shared by its dataset configs (paper 001, Sec. IV-A3)."""

import ml_collections

from configs import default


def get_config():
  config = default.get_config()
  config.model = "cmhn"
  config.data.batch_kind = "video"
  config.text.encoder = "bert"
  config.text.trainable = True  # the paper fine-tunes BERT
  config.text.pooling = "cls"
  config.cmhn = ml_collections.ConfigDict({
      "hidden": 512,  # Bi-TCN and MLP width (not given in the paper)
      "tcn_layers": 3,  # dilations 1, 2, 4 (Fig. 3)
      "tcn_kernel": 3,
      "causal": False,  # True: the released code's causal TCN
      "max_kernel": 16,  # Delta: candidate kernel sizes 1..Delta
      "code_bits": 128,  # L
      "final_activation": "rrelu",  # rrelu (Eq. 3-4) | tanh | none
      "similarity_codes": "continuous",  # continuous (Eq. 7) | binary (sgn, STE)
      "alpha": 1.0,
      "beta": 1.0,
      "dropout": 0.0,
  })
  config.train.optimizer = "adam"
  return config
