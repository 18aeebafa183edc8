import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

pytest.importorskip("triton")


@pytest.fixture
def device():
    return DEVICE
