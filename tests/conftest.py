"""Suite-wide settings: offline hubs, no analytics, small thread pools, quiet progress."""
import os

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "DVC_NO_ANALYTICS": "1", "SYMILE_DATA_PROGRESS": "off",
               "OMP_NUM_THREADS": "1"}.items():
    os.environ.setdefault(_k, _v)

import torch  # noqa: E402

torch.set_num_threads(1)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_lineage():
    """Each test starts a fresh restricted-read record (symile_data.io.lineage), as each
    command does: a MIMIC dataset read by one test is no input of another test's writer."""
    from symile_data.io import lineage
    lineage.reset()
    yield
    lineage.reset()


@pytest.fixture(scope="session")
def chain(tmp_path_factory):
    """The toy chain of tests/clients/clients_chain.py (~20 s on 2 cores), built once per
    session and read by the client tests and the doc tests (tests/docs): never write into it."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent / "clients"))
    from clients_chain import build_chain
    return build_chain(tmp_path_factory.mktemp("clients"))
