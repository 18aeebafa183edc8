"""streamgan: trained image-to-image GAN generators as fast video and live-stream filters."""

__version__ = "0.1.0"

from .checkpoints import load_generator, save_generator  # noqa: E402
from .engine import open_engine  # noqa: E402
from .errors import StreamganError  # noqa: E402
from .translate import TranslateOptions, Translator  # noqa: E402

__all__ = ["load_generator", "save_generator", "open_engine", "StreamganError", "TranslateOptions",
           "Translator", "translate_video", "__version__"]


def translate_video(*args, **kwargs):
    """See ``streamgan.video_run.translate_video``."""
    from .video_run import translate_video as run
    return run(*args, **kwargs)
