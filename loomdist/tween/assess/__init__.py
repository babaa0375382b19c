"""LOOM benchmark harness: Tests 16-19 protocols, environments, networks, reports."""
