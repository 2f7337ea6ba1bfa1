"""The xlam data path: synthetic rows, loading with validation, the held-out split and rendering."""
