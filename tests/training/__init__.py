"""Tests of spinrl.training, one file per module."""
