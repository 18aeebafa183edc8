"""The Triton-fused generator equals the unfused one."""

import copy

import pytest
import torch

from engines.fuse import FusedNorm, FusedResidual, fuse_generator
from engines.normstats import collect_stats, given_stats, stat_layers, unpack
from streamgan import load_generator
from tests.streamgan.helpers import tiny_resnet, tiny_unet


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("kind", ["resnet", "unet"])
def test_fused_generator_matches(tmp_path, kind, layout, device):
    path = tiny_resnet(tmp_path / "g.pth") if kind == "resnet" else tiny_unet(tmp_path / "g.pth", num_downs=5)
    model = load_generator(path).to(device)
    fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    fused = fuse_generator(copy.deepcopy(model).to(memory_format=fmt))
    kinds = {type(m) for m in fused.modules()}
    assert FusedNorm in kinds and (kind == "unet" or FusedResidual in kinds)
    x = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
    if layout == "nhwc":  # the fused norms see channels-last activations and keep them so
        seen = []
        hooks = [m.register_forward_hook(lambda m, a, out: seen.append(out.is_contiguous(memory_format=fmt)))
                 for m in fused.modules() if isinstance(m, FusedNorm)]
        with torch.no_grad():
            fused(x.to(memory_format=fmt))
        for h in hooks:
            h.remove()
        assert seen and all(seen)
        x = x.to(memory_format=fmt)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), atol=1e-4, rtol=1e-4)
        # thumbnail statistics flow through the fused layers too
        stats = collect_stats(model, x[:1])
        layers = stat_layers(model)
        for (m_ref, r_ref), (m_got, r_got) in zip(unpack(stats, layers), unpack(collect_stats(fused, x[:1]), layers)):
            torch.testing.assert_close(m_got, m_ref, atol=1e-4, rtol=1e-4)
            # compare standard deviations: rstd of a near-constant plane (U-Net's 2x2 maps) is ill-conditioned
            torch.testing.assert_close(1 / r_got, 1 / r_ref, atol=1e-4, rtol=1e-4)
        with given_stats(model, stats):
            ref = model(x)
        with given_stats(fused, stats):
            torch.testing.assert_close(fused(x), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graphs_and_layouts_in_the_engine(tmp_path):
    from engines.cudagraph import GraphedModule
    from engines.metrics import psnr
    from streamgan.translate.engine import open_engine
    path = tiny_resnet(tmp_path / "g.pth")
    model = load_generator(path).cuda()
    g = GraphedModule(model)
    with torch.no_grad():
        for h, w in ((32, 48), (64, 32), (32, 48)):  # a second shape is captured, the first replayed
            x = torch.rand(1, 3, h, w, device="cuda") * 2 - 1
            out = g(x)
            torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-5)
            assert out.data_ptr() != g(x).data_ptr()  # each call returns its own tensor
    assert len(g.graphs) == 2
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    ref = open_engine(path, device="cpu", backend="torch", precision="fp32").infer(x)
    for layout in ("nhwc", "nchw"):
        from engines.torch_backend import TorchEngine
        from streamgan.translate.engine import generator_meta
        eng = TorchEngine(load_generator(path), generator_meta(load_generator(path)), device="cuda", layout=layout)
        assert layout in eng.meta.backend and eng.graphed is not None
        assert psnr(eng.infer(x).cpu(), ref) >= 40
