"""Measuring the library: benchmarks (`bench`, `costs`, `corpus_speed`, `throughput`),
the PyTorch twins and the comparison against them (`torch_twins`, `compare`), the
bag-of-words baseline (`bow_baseline`, `word_regression`), paired significance
(`significance`) and the papers' figures beside a run's (`paper_rows`, `versus_paper`).

Nothing in the library imports this package.
"""
