"""ONNX graphs whose image is channels-last (N, H, W, C): TensorFlow's layout, as tf2onnx exports
it (AnimeGAN's released generators, most Keras models). Every engine here feeds and reads
(N, C, H, W), so such a graph is given a Transpose on its way in and on its way out, once, into
the cache; the runtimes fold them into the graph's own layout changes."""

from pathlib import Path

from .base import file_sha256
from .cache import cache_dir, entry

_CHANNELS = (1, 3, 4)  # grey, RGB, RGBA


def _dims(value) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def channels_last(value) -> bool:
    """Whether a 4-D graph input or output is (N, H, W, C): its last side is a channel count and
    its second is not (a fully dynamic shape cannot be told, and is taken as NCHW)."""
    d = _dims(value)
    return len(d) == 4 and d[3] in _CHANNELS and d[1] not in _CHANNELS


def nchw_graph(path: Path) -> tuple[Path, bool]:
    """(graph to run, whether it was channels-last): a graph whose image input is channels-last
    is written once into the cache (keyed by its bytes) with that input and its channels-last
    4-D outputs made (N, C, H, W), their names kept; any other comes back unchanged."""
    cached = cache_dir("onnx") / f"{file_sha256(path)[:20]}-nchw.onnx"

    def make(tmp: Path) -> dict:
        import onnx
        try:
            model = onnx.load_from_string(path.read_bytes())
        except Exception:  # not ONNX: the engine that opens it says so
            return {"rewritten": False, "source": str(path)}
        image = next((i for i in model.graph.input if len(_dims(i)) == 4), None)
        if image is None or not channels_last(image):
            return {"rewritten": False, "source": str(path)}
        _to_nchw(model, image)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        return {"rewritten": True, "source": str(path)}
    return (cached, True) if entry(cached, make)["rewritten"] else (path, False)


def _to_nchw(model, image) -> None:
    """``model`` rewritten in place: ``image`` taken as (N, C, H, W) and transposed for the graph,
    each channels-last 4-D output transposed back from it."""
    from onnx import helper
    g = model.graph
    inner = f"{image.name}/channels_last"
    for node in g.node:
        node.input[:] = [inner if i == image.name else i for i in node.input]
    for o in g.output:
        if o.name == image.name:  # (an output that is the input itself)
            o.name = inner
    n, h, w, c = image.type.tensor_type.shape.dim
    _reorder(image, [n, c, h, w])
    first = [helper.make_node("Transpose", [image.name], [inner], perm=[0, 2, 3, 1], name=inner)]
    last = []
    for o in g.output:
        if not channels_last(o):
            continue
        inner_out = f"{o.name}/channels_last"
        for vi in g.value_info:
            if vi.name == o.name:
                vi.name = inner_out
        for node in g.node:
            node.output[:] = [inner_out if x == o.name else x for x in node.output]
            node.input[:] = [inner_out if x == o.name else x for x in node.input]
        last.append(helper.make_node("Transpose", [inner_out], [o.name], perm=[0, 3, 1, 2], name=inner_out))
        n, h, w, c = o.type.tensor_type.shape.dim
        _reorder(o, [n, c, h, w])
    nodes = first + list(g.node) + last
    del g.node[:]
    g.node.extend(nodes)


def _reorder(value, dims: list) -> None:
    """``value``'s shape set to ``dims`` (copies of its dimension protos, in the new order)."""
    import onnx
    copies = [onnx.TensorShapeProto.Dimension() for _ in dims]
    for new, old in zip(copies, dims):
        new.CopyFrom(old)
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    shape.dim.extend(copies)
