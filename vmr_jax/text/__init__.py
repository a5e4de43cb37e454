"""Text side: word splitting, vocabularies, tokenizers (no TensorFlow here)."""
