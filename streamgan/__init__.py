"""streamgan: trained image-to-image GAN generators as fast video and live-stream filters."""

__version__ = "0.1.0"

__all__ = ["load_generator", "save_generator", "open_engine", "StreamganError", "TranslateOptions",
           "Translator", "translate_video", "__version__"]

# imported on first use: ``import streamgan`` stays cheap (an ONNX run on a CPU never loads torch)
_EXPORTS = {"load_generator": "checkpoints", "save_generator": "checkpoints", "open_engine": "engine",
            "StreamganError": "errors", "TranslateOptions": "translate", "Translator": "translate"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'streamgan' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def translate_video(*args, **kwargs):
    """See ``streamgan.video_run.translate_video``."""
    from .video_run import translate_video as run
    return run(*args, **kwargs)
