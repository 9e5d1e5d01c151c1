"""Tests of spinrl.common, one file per module."""
