"""Translate image files: one image, a folder or a glob."""

import sys
import time
from pathlib import Path

from tqdm import tqdm

from engines.base import Engine

from ..errors import OutputError
from ..media.files import check_output, file_identity
from ..media.images import (
    ALPHA_SUFFIXES,
    ANIMATED_SUFFIXES,
    EXIF_SUFFIXES,
    Animation,
    exif_of,
    expand_images,
    is_image,
    read_animation,
    read_image,
    read_image_alpha,
    write_animation,
    write_image,
)
from ..translate.content_check import ContentCheck
from ..translate.translator import TranslateOptions, Translator


def image_outputs(inputs: list[Path], output: Path, create: bool = True) -> list[Path]:
    """One input -> ``output`` (a file, or a folder to put it in); several -> files in the folder
    (made when ``create``; otherwise only checked that it can be)."""
    if len(inputs) == 1 and not output.is_dir() and is_image(output):
        return [output]
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: several inputs need an output folder")
    if not output.exists() and (output.suffix or not output.resolve().parent.is_dir()):
        raise OutputError(f"{output}: images are written to image files (.png, .jpg, ...) or a folder"
                          if output.suffix else f"{output.resolve().parent}: output folder does not exist")
    if create:
        output.mkdir(exist_ok=True)
    return [output / p.name for p in inputs]


def translate_images(spec: str, output: str | Path, engine: Engine,
                     options: TranslateOptions | None = None, overwrite: bool = False,
                     progress: bool = True, quiet: bool = False) -> dict:
    """Translate every image ``spec`` names into ``output``; returns a small report (printed
    unless ``quiet``)."""
    inputs = expand_images(spec)
    outputs = image_outputs(inputs, Path(output))
    for dst in outputs:
        check_output(dst, inputs, overwrite)
    translator = Translator(engine, options)
    t0 = time.perf_counter()
    n = len(inputs)  # the precision is checked on the first image and two spread over the rest
    check = ContentCheck(translator, samples=lambda: [read_image(inputs[n * k // 3]) for k in (1, 2) if n * k // 3],
                         recheck_at=(3 * n) // 4 + 1 if n >= 4 else None,
                         key="|".join(map(file_identity, inputs)))
    check.overlap = True  # images of one size overlap in the engine, as a video's frames do (Translator.submit)

    alphas, dropped, firsts = {}, [], []  # an input's alpha, until its output is written; outputs that hold
    # no alpha; animated inputs written as their first picture (the output's format holds one)
    exifs, no_exif = {}, []  # an input's EXIF (camera, date, place), until its output is written; outputs
    # whose format it is not written into

    def written(done: list) -> None:  # images finished, in order: (index, output)
        for i, out in done:
            check.after(i, out)
            alpha, exif = alphas.pop(i, None), exifs.pop(i, None)
            write_image(outputs[i], out, alpha, exif)
            if exif and outputs[i].suffix.lower() not in EXIF_SUFFIXES:
                no_exif.append(outputs[i].name)
            if alpha is not None and outputs[i].suffix.lower() not in ALPHA_SUFFIXES:
                dropped.append(outputs[i].name)
    for i, src in enumerate(tqdm(inputs, desc="images", unit="img", disable=not progress)):
        anim = read_animation(src)
        if anim is not None and outputs[i].suffix.lower() in ANIMATED_SUFFIXES:
            written(translator.flush())
            write_animation(outputs[i], _translated(anim, translator, check))
            continue
        if anim is not None:
            firsts.append(f"{outputs[i].name} ({len(anim.frames)} pictures in)")
            rgb, alphas[i] = anim.frames[0], anim.alphas[0]
        else:
            rgb, alphas[i] = read_image_alpha(src)
            exifs[i] = exif_of(src)
        out = check.before(rgb, i)
        if out is not None:  # the check translated it
            written(translator.flush() + [(i, out)])
        else:
            written(translator.submit(rgb, i))
    written(translator.flush())
    seconds = time.perf_counter() - t0
    report = {"frames_in": len(inputs), "frames_out": len(outputs), "outputs": [str(p) for p in outputs],
              "seconds": seconds, "engine": engine.describe(), "backend": engine.meta.backend,
              "precision": engine.meta.precision, "precision_check": check.describe(), "plan": translator.decision,
              "ms_per_frame": {k: 1000 * v / len(inputs) for k, v in translator.times.items()},
              "notes": []}
    if dropped:
        report["notes"].append(f"transparency left out of {some(dropped)}: {outputs[0].suffix or 'that format'} "
                               "holds none (write .png, .webp or .tiff to keep it)")
    if no_exif:
        report["notes"].append(f"EXIF (camera, date, place) left out of {some(no_exif)}: {outputs[0].suffix} is not "
                               "written with it (write .jpg, .png or .heic to keep it)")
    if firsts:
        report["notes"].append(f"{some(firsts)}: only the first picture of an animated or multi-page input is "
                               "written, the format holds one (write .webp, .png or .tiff to keep them all)")
    if not quiet:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in report["ms_per_frame"].items())  # (none where the
        # precision check's own pictures were the outputs)
        print(f"images in {len(inputs)}, out {len(outputs)}, {seconds:.2f} s ({report['engine']})"
              + (f"; ms/image: {stages}" if stages else ""), file=sys.stderr)
        if translator.decision:
            print(f"plan: {translator.decision}", file=sys.stderr)
        if report["precision_check"]:
            print(f"precision: {report['precision_check']}", file=sys.stderr)
        for note in report["notes"]:
            print(f"note: {note}", file=sys.stderr)
    return report


def _translated(anim: Animation, translator: Translator, check: ContentCheck) -> Animation:
    """Every picture of an animated or multi-page image translated, one after the other (the run's
    first picture through the precision check), with its alpha, times and loop."""
    outs = []
    for rgb in anim.frames:
        out = check.before(rgb) if check.seen == 0 else None
        outs.append(translator(rgb) if out is None else out)
    return Animation(outs, anim.alphas, anim.durations, anim.loop)


def some(names: list[str]) -> str:
    """The first three of ``names``, and '...' where there are more."""
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
