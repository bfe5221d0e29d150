"""Encoder features (issue 6): encoders by name, tiny test models, feature tables, join.

Every per-item cost (decode, resize, encode, tokenize) is paid once per unique item; the
feature tables are keyed by item key plus an encoder id (model id, revision, preprocessing,
storage dtype) and joined into M3 training shards by key.
"""
