"""Tests of spinrl.presets: the shipped settings and --preset."""
