"""Tests of spinrl.algos: the algorithms' own pieces, and whole runs that learn, resume and refuse bad input."""
