"""Explorer pages, one module per page family."""
