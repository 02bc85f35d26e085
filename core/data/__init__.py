"""Sessions in: the dataset sources (core.data.sources), fetching and caching (catalog), the stored and split
SessionDataset (dataset), sessionisation of raw logs, and the domain of a dataset."""
