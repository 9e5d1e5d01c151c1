"""Tests of spinrl.exercises: checkers, solutions, templates and their command line."""
