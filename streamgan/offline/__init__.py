"""Offline runs: a video file, a folder of videos or images translated with every frame kept
(``streamgan run`` on files), through ``pipeline.run_offline``.

Imports ``media``, ``translate``, ``temporal``, ``pipeline``, ``errors`` and ``options``; and
``live`` for a ``run`` whose input or output is a stream or a camera, which it hands to the live
pipeline.
"""
