"""The package layout holds: no import circle anywhere in streamgan (module-level or inside a
function), engines never imports streamgan, kernels imports nothing of ours, and each stage of
streamgan imports only the stages its package docstring allows."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("streamgan", "engines", "kernels")

# stage -> the stages (subpackages or top-level modules of streamgan) it may import, as each
# subpackage's docstring says; the shared top-level modules may be imported by every stage
SHARED = {"errors", "options", "latency", "pipeline", "arguments", "models", "data"}
ALLOWED = {
    "media": set(),
    "translate": {"media"},
    "temporal": {"media"},
    "offline": {"media", "translate", "temporal", "live"},
    "live": {"media", "translate", "temporal"},
    "scale": {"offline", "media", "translate"},
    "train": {"media", "translate"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for top in OURS:
        for p in (ROOT / top).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, known: dict) -> set[str]:
    """The modules of ours that ``name`` imports, anywhere in it (relative imports resolved)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in known:  # 'a.b.func' -> 'a.b'
                t = t.rpartition(".")[0]
            if t and t != name and t.split(".")[0] in OURS:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def _ancestors_are_free(graph, a, b) -> bool:
    # importing a.b.c imports a and a.b first: a package's __init__ importing its own modules is
    # not a circle with them
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_circles():
    graph = _graph()
    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if _ancestors_are_free(graph, v, w):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))
    for v in list(graph):
        if v not in index:
            visit(v)
    assert not circles, circles


def test_layers():
    graph = _graph()
    for name, deps in graph.items():
        top = name.split(".")[0]
        if top == "engines":
            assert not any(d.startswith("streamgan") for d in deps), (name, deps)
        if top == "kernels":
            assert all(d.startswith("kernels") for d in deps), (name, deps)
        parts = name.split(".")
        if top == "streamgan" and len(parts) > 1 and parts[1] in ALLOWED:
            for d in deps:
                dp = d.split(".")
                if dp[0] != "streamgan" or len(dp) < 2 or dp[1] == parts[1] or dp[1] in SHARED:
                    continue
                assert dp[1] in ALLOWED[parts[1]], f"{name} imports {d}"
