"""vmr_jax: video moment retrieval and temporal grounding models in JAX/Flax.

`vmr_jax.Predictor` (`vmr_jax.predictor`) searches a video collection with a model
export (`vmr_jax.export`); it is imported on first use, so `import vmr_jax` stays
light.
"""

__version__ = "0.1.0"


def __getattr__(name):
  if name == "Predictor":
    from vmr_jax.predictor import Predictor
    return Predictor
  raise AttributeError(f"module 'vmr_jax' has no attribute {name!r}")
