"""Benchmarks: the integration against the Fleet API simulator on a controlled clock."""
