"""vmr_jax: video moment retrieval and temporal grounding models in JAX/Flax."""

__version__ = "0.1.0"
