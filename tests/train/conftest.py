import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import write_dataset  # noqa: E402

os.environ.setdefault("SYMILE_DATA_PROGRESS", "off")
torch.set_num_threads(1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def xor_dir(tmp_path):
    import numpy as np
    from symile_data.xor import generate_xor
    splits = {s: generate_xor(n, 3, 1.0, np.random.default_rng(k), s)
              for k, (s, n) in enumerate((("train", 256), ("val", 64), ("test", 128)))}
    return write_dataset(tmp_path / "xor", splits, extra={"d_v": 3, "p": 1.0})


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory):
    """A random 2-layer XLM-R saved with save_pretrained (loaded back by path)."""
    from transformers import XLMRobertaConfig, XLMRobertaModel
    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=32,
                           max_position_embeddings=40, bos_token_id=0, pad_token_id=1,
                           eos_token_id=2)
    path = tmp_path_factory.mktemp("tiny-xlmr")
    XLMRobertaModel(cfg).save_pretrained(path)
    return path
