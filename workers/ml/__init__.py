"""Model backends behind small interfaces, loaded lazily once per process through registries."""
