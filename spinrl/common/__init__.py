"""Foundations every other part uses: the one error type users see, argument checks, the torch device and
thread budget, MPI helpers, and how seeds are derived.
"""
