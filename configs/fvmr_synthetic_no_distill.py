"""FVMR on the synthetic benchmark without the distillation loss (lambda = 0; the
paper's "FVMR (w/o. SD)" ablation, Table 5): the teacher still trains with its own
BCE through the shared video encoder and phi_m. Compare with configs/fvmr_synthetic.py.
"""

from vmr_jax.configs import fvmr_synthetic


def get_config():
  config = fvmr_synthetic.get_config()
  config.fvmr.distill_weight = 0.0
  return config
