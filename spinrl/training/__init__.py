"""Pieces the algorithm files share beyond nets and buffers: the building blocks of the on-policy and
off-policy loops, compiled updates and the running normalisers.
"""
