"""Everything a run writes and reads back in its folder: the logger, the folder's file names and resume
checks, the lock, checkpoints, the saved policy's description and experiment tracking.
"""
