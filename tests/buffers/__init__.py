"""Tests of spinrl.buffers, one file per module."""
