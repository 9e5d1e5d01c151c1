"""Tests of spinrl.record, one file per module, and what a run folder keeps through faults and resumes."""
