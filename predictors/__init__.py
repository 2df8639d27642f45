"""Accuracy and latency predictors behind one interface (see ``predictors.base``)."""
