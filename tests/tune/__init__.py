"""Tests of spinrl.tune: the search space and the study."""
