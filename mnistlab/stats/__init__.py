"""Pure statistics on per-seed numbers (no torch, no MLflow):

- signflip.py: the exact paired sign-flip test (vectorised), the interval that inverts it, and
  the smallest p it can give (how many seeds a verdict needs);
- analysis.py: features of a run's histories, paired estimates and tests per claim, Holm over
  the family, and the decision each row gets;
- verdicts.py: every verdict word, with its tone and whether it settles the question;
- sequential.py: adaptive seeds: looks, alpha spent only where a look can decide, decisions;
- power.py: power curves and seeds needed, at the observed effect or one the user names;
- ranking.py: which arm is best: ranks with seeds as blocks, Friedman's test, every pair under
  one Holm family, the probability of improvement, the groups not told apart.
"""
