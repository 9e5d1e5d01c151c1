"""Everything a run writes in its folder while it trains: the logger and its parts (the progress table,
config.json and the same-run rule, status.json, the live display, TensorBoard, the saved policy), the
folder itself and the names of its files, the writer's lock, checkpoints and experiment tracking.
"""
