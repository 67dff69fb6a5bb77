"""Client SDKs that talk to livecore over the network only."""
