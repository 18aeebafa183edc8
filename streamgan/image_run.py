"""Translate image files: one image, a folder or a glob."""

from pathlib import Path

from tqdm import tqdm

from engines.base import Engine

from .errors import OutputError
from .images import expand_images, is_image, read_image, write_image
from .io_utils import check_output
from .translate import TranslateOptions, Translator


def image_outputs(inputs: list[Path], output: Path) -> list[Path]:
    """One input -> ``output`` (a file, or a folder to put it in); several -> files in the folder."""
    if len(inputs) == 1 and not output.is_dir() and is_image(output):
        return [output]
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: several inputs need an output folder")
    if not is_image(output) and output.suffix == "":
        output.mkdir(parents=True, exist_ok=True)
    if not output.is_dir():
        raise OutputError(f"{output}: not an image file name or folder")
    return [output / p.name for p in inputs]


def translate_images(spec: str, output: str | Path, engine: Engine,
                     options: TranslateOptions | None = None, overwrite: bool = False,
                     progress: bool = True) -> dict:
    """Translate every image ``spec`` names into ``output``; returns a small report."""
    inputs = expand_images(spec)
    outputs = image_outputs(inputs, Path(output))
    for dst in outputs:
        check_output(dst, inputs, overwrite)
    translator = Translator(engine, options)
    for src, dst in tqdm(list(zip(inputs, outputs)), desc="images", unit="img", disable=not progress):
        write_image(dst, translator(read_image(src)))
    return {"frames_in": len(inputs), "frames_out": len(outputs), "outputs": [str(p) for p in outputs],
            "times": dict(translator.times)}
