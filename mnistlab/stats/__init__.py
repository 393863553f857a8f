"""Pure statistics on per-seed numbers (no torch, no MLflow):

- signflip.py: the exact paired sign-flip test (vectorised), the interval that inverts it, and
  the smallest p it can give (how many seeds a verdict needs);
- analysis.py: paired evidence per claim: each variant against the baseline, paired by seed
  (estimate, interval, p, effect size, wins, TOST), before any decision;
- censored.py: pairs with a run that never reached its threshold: known signs, bounds, the
  sign test and the order-statistic interval of the median;
- multiplicity.py: Holm's correction over the family, and the family's size;
- decisions.py: the verdict per claim from the Holm-corrected p-values, and the fewest seeds
  a verdict needs;
- verdicts.py: every verdict word, with its tone and whether it settles the question;
- claim_verdicts.py: ClaimVerdict, one variant's verdict on one claim as a frozen record with
  every field present, made once from the decided table and back to it (verdicts.csv);
- sequential.py: adaptive seeds: looks, alpha spent only where a look can decide, decisions;
- power.py: power curves and seeds needed, at the observed effect or one the user names;
- planning.py: seeds planned from a noisy pilot (its SD at an upper confidence bound);
- equivalence_power.py: the power of TOST for an equivalence claim, and the seeds it needs;
- ranking.py: which arm is best: ranks with seeds as blocks, Friedman's test, every pair under
  one Holm family, the probability of improvement, the groups not told apart.
"""
