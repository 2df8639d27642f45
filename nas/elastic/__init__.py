"""Elastic layers: weights at the largest size, sliced in ``forward``; ``export()`` → static."""
