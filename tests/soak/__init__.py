"""The long reliability run (`make soak`): faults injected into the whole pipeline while a
long replay of synthetic candles runs, with the books balanced at the end. Not collected
by pytest (see pyproject's norecursedirs); run `python -m tests.soak --help`."""
