"""Tests of spinrl.envs, one file per module, and of an environment of the user's own."""
