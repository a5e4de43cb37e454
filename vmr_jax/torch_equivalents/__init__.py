"""PyTorch versions of the models (same layers and sizes), used only by
`vmr_jax.bench` to time the same train step in eager PyTorch on the same machine."""
