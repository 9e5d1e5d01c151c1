"""Where experience is kept between acting and learning: the on-policy GAE buffer, the off-policy replay
buffer, and its frame-stacking variant for Atari.
"""
