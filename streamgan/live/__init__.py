"""Live runs: a stream, a camera or a file at its own pace through ``pipeline.run_live`` (the newest
frame wins), the ``webcam`` front-end and ``serve`` (the browser over WebRTC, WHIP and WHEP).

Imports ``media``, ``translate``, ``temporal``, ``pipeline``, ``latency``, ``arguments``,
``errors`` and ``options``; never ``offline``, ``scale`` or ``cli``.
"""
