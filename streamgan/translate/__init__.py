"""One frame through a model: opening engines (checkpoints, ONNX, OpenVINO IR, AOTInductor,
TensorRT) and building them, the translator (pre/post-processing, tiles, blending, normalisation
statistics), the memory decision between full frame and tiles, and precision decided on the run's
own frames.

Imports ``media`` (image and video helpers for building and checking), ``models``, ``errors`` and
``options`` of streamgan, and the ``engines`` and ``kernels`` packages; nothing of the pipeline or
its front-ends.
"""
