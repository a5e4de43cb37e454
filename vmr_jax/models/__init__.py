"""One module per paper; each registers a `vmr_jax.registry.ModelSpec` as `SPEC`."""
