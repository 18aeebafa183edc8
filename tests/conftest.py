"""Shared fixtures: tiny generators with official layouts, synthetic clips made with PyAV."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton

import pytest  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
