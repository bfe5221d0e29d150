import dataclasses

import pytest

from symile_data.config import ConfigError, from_dict, load_section, params_hash
from symile_data.xor import XorDataConfig


@dataclasses.dataclass(frozen=True)
class Demo:
    name: str
    n: int = 3
    rate: float = 0.5
    tags: tuple[str, ...] = ()
    path: str | None = None


def test_strict_loading_and_coercion():
    cfg = from_dict(Demo, {"name": "x", "rate": 1, "tags": ["a", "b"]}, "params.yaml:demo")
    assert cfg == Demo(name="x", n=3, rate=1.0, tags=("a", "b"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n = 4  # type: ignore[misc]


@pytest.mark.parametrize("data, needle", [
    ({"name": "x", "nn": 1}, "unknown key(s) nn"),
    ({"n": 1}, "missing required key 'name'"),
    ({"name": "x", "n": "3"}, "demo.n: expected"),
    ({"name": "x", "n": True}, "demo.n: expected"),
    ({"name": "x", "tags": [1]}, "demo.tags: expected"),
])
def test_errors_name_section_and_key(data, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        from_dict(Demo, data, "params.yaml:demo")


def test_validate_hook_and_file_errors(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("xor_data:\n  ps: [0.5, 1.5]\n")
    with pytest.raises(ConfigError, match="ps must lie in"):
        load_section(XorDataConfig, "xor_data", p)
    with pytest.raises(ConfigError, match="missing section 'other'"):
        load_section(XorDataConfig, "other", p)
    with pytest.raises(ConfigError, match="not found"):
        load_section(XorDataConfig, "xor_data", tmp_path / "nope.yaml")
    p.write_text("xor_data:\n  ps: [0.5\n")
    with pytest.raises(ConfigError, match=rf"{p}: not valid YAML .*line 3"):
        load_section(XorDataConfig, "xor_data", p)


def test_repo_params_load_and_hash_is_stable():
    cfg = load_section(XorDataConfig, "xor_data", "params.yaml")
    assert params_hash(cfg) == params_hash(load_section(XorDataConfig, "xor_data", "params.yaml"))
    assert params_hash(cfg) != params_hash(dataclasses.replace(cfg, seed=cfg.seed + 1))


def test_cli_set_overrides_apply_strictly(tmp_path, capsys):
    from symile_data.cli import main
    from symile_data.config import set_cli_overrides
    from symile_data.io.manifest import read_manifest
    try:
        assert main(["--set", "xor_data.n_train=50", "--set", "xor_data.ps=[0.5]",
                     "xor-data", "--out", str(tmp_path)]) == 0
        assert read_manifest(tmp_path / "p0.5")["splits"]["train"]["rows"] == 50
        assert main(["--set", "xor_data.n_trian=5", "xor-data", "--out", str(tmp_path)]) == 2
        assert "unknown key(s) n_trian" in capsys.readouterr().err
        assert main(["--set", "xor_dat.n_train=5", "xor-data", "--out", str(tmp_path)]) == 2
        assert "unknown section(s) xor_dat" in capsys.readouterr().err
        assert main(["--set", "n_train", "xor-data", "--out", str(tmp_path)]) == 2
    finally:
        set_cli_overrides([])
