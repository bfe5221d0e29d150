import os

import pytest
import torch

os.environ.setdefault("SYMILE_DATA_PROGRESS", "off")
torch.set_num_threads(1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
