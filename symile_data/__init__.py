"""symile-data: regenerate, shard, publish and train on the Symile datasets."""
__version__ = "0.1.0"
