from pathlib import Path

from symile_data import schema
from symile_data.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_schema_json_matches_module():
    assert schema.diff_schemas(ROOT / "schemas") == []


def test_every_schema_is_stamped_and_checkable(tmp_path):
    for name in schema.names():
        s = schema.get(name)
        assert schema.schema_name(s) == name
        assert s.metadata[b"symile_data.schema_version"].decode() == schema.SCHEMA_VERSION
    assert main(["schemas", "--write", "--dir", str(tmp_path)]) == 0
    assert main(["schemas", "--dir", str(tmp_path)]) == 0
    first = sorted(tmp_path.glob("*.json"))[0]
    first.write_text(first.read_text().replace('"nullable": false', '"nullable": true', 1))
    assert main(["schemas", "--dir", str(tmp_path)]) == 1
