"""Benchmarks: the accuracy scripts and the performance suite (``python -m benchmarks.run``)."""
