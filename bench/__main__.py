"""`python -m bench` (or `make bench`): run every benchmark in turn."""

from bench import idle_memory

for benchmark in (idle_memory,):
    benchmark.main()
    print()
