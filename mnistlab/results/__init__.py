"""A study's results: which runs are its evidence, their measures and statistics
(evidence.py), and the ranking of its arms when its spec asks for one (ranking.py)."""
