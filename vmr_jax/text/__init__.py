"""Text encoders: Flax BERT, GloVe tables and recurrent heads, by name (no TensorFlow
here). Word splitting, the vocabulary and WordPiece tokenization are in
`data_pipelines.words` and `data_pipelines.wordpiece`."""
