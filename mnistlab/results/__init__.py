"""A study's results: which runs are its evidence, their measures and statistics."""
