"""Frames in and out: video files (PyAV: decoding, encoding, audio remuxed, colour and HDR), image
files, network streams and cameras as sources, files, streams, windows and virtual cameras as
sinks, stream URLs, and atomic output files.

Owns everything that touches a container, a codec or a device. Imports from streamgan only
``errors`` and ``options``: the other stages build on it.
"""
