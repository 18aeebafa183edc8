"""CUDA graphs for a module at fixed input shapes: one capture per shape, replayed afterwards.

A 256x256 ResNet generator at batch 1 launches a few hundred small kernels (convolutions, the
fused norms, pads); replaying them as one graph removes the per-launch CPU cost that bounds it.
Capture follows PyTorch's recipe: warm-up calls on a side stream (Triton compilation and kernel
tuning happen there, never during capture), then ``torch.cuda.graph`` on a static input buffer.
Calls with normalisation statistics given or collected (thumbnail tiles, the statistics EMA)
must not use the graph: those swap tensors per call. The caller decides (``TorchEngine._run``).
"""

from collections import OrderedDict

import torch


class GraphedModule:
    """``module(x)`` through a CUDA graph captured for x's shape, dtype and strides.

    Keeps at most ``max_graphs`` captures (least recently used dropped: tile edges give a few
    shapes per frame size). Returns a fresh tensor each call (a copy of the graph's static
    output), so results never change under the caller's hands.
    """

    def __init__(self, module: torch.nn.Module, max_graphs: int = 4, warmup: int = 2):
        self.module, self.max_graphs, self.warmup = module, max_graphs, warmup
        self.graphs: OrderedDict = OrderedDict()

    def _capture(self, x: torch.Tensor):
        static_in = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
        static_in.copy_(x)
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.module(static_in)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.module(static_in)
        return graph, static_in, static_out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype, tuple(x.stride()))
        if key not in self.graphs:
            if len(self.graphs) >= self.max_graphs:
                self.graphs.popitem(last=False)
            self.graphs[key] = self._capture(x)
        self.graphs.move_to_end(key)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()
