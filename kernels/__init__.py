"""Triton kernels for GAN generator inference, with pure-torch references (``kernels.reference``).

Triton is imported lazily, inside the ops, so importing this package works without it.
Ops: instance_norm, instance_norm_stats, preprocess, postprocess, blend_tiles.
"""

from . import reference

__all__ = ["reference", "instance_norm", "instance_norm_stats", "preprocess", "postprocess",
           "blend_tiles", "triton_available"]


def triton_available() -> bool:
    """True when triton imports and can run here (a CUDA device, or TRITON_INTERPRET=1)."""
    import os
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    import torch
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


def instance_norm(*args, **kwargs):
    from .norm import instance_norm as op
    return op(*args, **kwargs)


def instance_norm_stats(*args, **kwargs):
    from .norm import instance_norm_stats as op
    return op(*args, **kwargs)


def preprocess(*args, **kwargs):
    from .pre_post import preprocess as op
    return op(*args, **kwargs)


def postprocess(*args, **kwargs):
    from .pre_post import postprocess as op
    return op(*args, **kwargs)


def blend_tiles(*args, **kwargs):
    from .blend import blend_tiles as op
    return op(*args, **kwargs)
