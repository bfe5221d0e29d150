"""Publishing and interoperability (issue 7): Hub upload with dataset cards, export to the
reference code's tensor layout, export of Parquet shards to WebDataset tars."""
