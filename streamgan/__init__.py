"""streamgan: trained image-to-image GAN generators as fast video and live-stream filters."""

__version__ = "0.1.0"

__all__ = ["load_generator", "save_generator", "open_engine", "StreamganError", "TranslateOptions",
           "Translator", "translate_video", "__version__"]

# imported on first use: ``import streamgan`` stays cheap (an ONNX run on a CPU never loads torch)
_EXPORTS = {"load_generator": "translate.checkpoints", "save_generator": "translate.checkpoints",
            "open_engine": "translate.engine", "StreamganError": "errors", "TranslateOptions": "translate.translator",
            "Translator": "translate.translator"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'streamgan' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def translate_video(*args, **kwargs):
    """See ``streamgan.offline.video.translate_video``."""
    from .offline.video import translate_video as run
    return run(*args, **kwargs)
