"""Checkpoints shared by the engine tests (one set per test module)."""

import pytest

from tests.streamgan.helpers import tiny_resnet, tiny_unet


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    return {"resnet": tiny_resnet(d / "r.pth"), "unet": tiny_unet(d / "u.pth", num_downs=5)}
