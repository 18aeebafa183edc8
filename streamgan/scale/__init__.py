"""Scale-out: whole videos and keyframe-aligned segments of long ones as work items on Ray actors,
joined by stream copy (``streamgan run --ray``).

Imports ``offline`` (each item is an offline run), ``media``, ``translate`` and ``errors``.
"""
