"""Statistics from the GENESIS web services: the client, the declared sources, incremental fetching and landing."""
