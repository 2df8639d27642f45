"""Searchers behind one ask/tell interface, and the local search loop."""
