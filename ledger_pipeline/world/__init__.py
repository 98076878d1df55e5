"""The simulated business behind every sandbox rail: money flows generated once, rendered by each rail."""
