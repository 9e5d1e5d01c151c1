"""Tests of spinrl.nets, one file per module."""
