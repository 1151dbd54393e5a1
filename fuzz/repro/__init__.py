"""After a finding: bucket it by root cause (`triage`), replay it as a readable trace or JSON
(`replay`), shrink it keeping its signature (`minimize`), and turn it into a regression test
(`export`: pytest or KUnit).

Rank 4 of fuzz/: imports `fuzz.lang`, `fuzz.gen`, `fuzz.judge`, `fuzz.run` and below.
"""
