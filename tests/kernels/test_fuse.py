"""The Triton-fused generator equals the unfused one."""

import copy

import pytest
import torch

from engines.fuse import FusedNorm, FusedResidual, fuse_generator
from engines.normstats import collect_stats, given_stats, stat_layers, unpack
from streamgan import load_generator
from tests.streamgan.helpers import tiny_resnet, tiny_unet


@pytest.mark.parametrize("kind", ["resnet", "unet"])
def test_fused_generator_matches(tmp_path, kind, device):
    path = tiny_resnet(tmp_path / "g.pth") if kind == "resnet" else tiny_unet(tmp_path / "g.pth", num_downs=5)
    model = load_generator(path).to(device)
    fused = fuse_generator(copy.deepcopy(model))
    kinds = {type(m) for m in fused.modules()}
    assert FusedNorm in kinds and (kind == "unet" or FusedResidual in kinds)
    x = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
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
