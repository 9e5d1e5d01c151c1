"""Reading runs back: finding and loading run folders (:mod:`.runs`), the commands ``spinrl ls``,
``plot`` and ``compare``, and the policy viewer (``spinrl test_policy``, ``load_policy``) with the
network it rebuilds and the videos it records.
"""
