"""Greedy non-maximum suppression: a compiled (Cython) and a numpy implementation."""
