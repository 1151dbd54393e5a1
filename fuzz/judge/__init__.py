"""Judgement: the finding kinds and signatures (`findings`), the records of a run that the
executor writes and the oracles read (`records`), interval arithmetic (`intervals`), and the
oracles that check every op (`oracles`).

Rank 2 of fuzz/: imports `fuzz.lang` and the model only.  It sits below `fuzz.run` although
checking follows executing in the data flow: the executor calls the oracles after each op, so
the oracles and the record types they share with the executor must not import execution.
"""
