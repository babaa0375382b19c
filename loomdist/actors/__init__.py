"""Ray actors: thin wrappers over the math plane (cells, branches) and their transport."""
