"""Shared building blocks; each model reuses these rather than copying them."""
