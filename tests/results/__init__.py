"""Tests of spinrl.results, one file per module: ls, plot, compare and the policy viewer."""
