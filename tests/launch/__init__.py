"""Tests of spinrl.launch: the grid, local processes, the fork server, run specs and Ray."""
