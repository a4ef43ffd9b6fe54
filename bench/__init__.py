"""Benchmarks of the pipeline: ``python -m bench [B1 …] [--quick]`` (``make bench`` runs them all).

Every figure is measured next to its baseline in the same run, on this machine, against a database
and Kafka topics of its own that are dropped at the end.
"""
