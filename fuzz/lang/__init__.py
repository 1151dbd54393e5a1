"""The op language: scenarios as text (`ops`: parse, format, the op and config types) and as
fuzzer bytes (`codec`: any bytes decode to a valid scenario).

Rank 0 of fuzz/ (tests/test_imports.py): imports the model and nothing else of fuzz/.
"""
