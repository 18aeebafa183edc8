"""Shared fixtures: tiny generators with official layouts, synthetic clips made with PyAV."""

import os
import tempfile

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton

import pytest  # noqa: E402

torch.set_num_threads(2)
# compiled models, exported graphs and measured backend choices go to a cache of this test session
os.environ["STREAMGAN_CACHE"] = tempfile.mkdtemp(prefix="streamgan_test_cache_")


# the devices pipeline tests run on: the CPU always, CUDA where there is one (bench/run_gpu.sh tests)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
