"""Datasets: release-format readers, TFDS builders and the tf.data input pipeline.

The only package of the project that imports TensorFlow.
"""
