"""Pieces the algorithm files share beyond nets and buffers: the on-policy collector, off-policy helpers,
compiled updates and the running normalisers.
"""
