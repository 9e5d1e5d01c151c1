"""The commands that read finished or running runs: ``spinrl ls``, ``plot``, ``compare``, and the policy
viewer (``spinrl test_policy``, ``load_policy``).
"""
