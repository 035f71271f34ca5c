"""One module per schema revision, applied in order by ``advisor db upgrade``."""
