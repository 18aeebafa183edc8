"""Data: a procedural day/night scene renderer for training and demos."""
