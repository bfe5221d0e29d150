"""Rank body for test_parts (spawned; must be importable by name)."""


def encode_rank(rank, world, cfg, root, out):
    from symile_data.features.parts import encode_m3_parallel
    report = encode_m3_parallel(cfg, f"{root}/media/m3_images.parquet",
                                f"{root}/media/m3_clips.parquet", f"{root}/samples", out)
    assert (report is None) == (rank != 0)
