"""Engine overhead benchmark (see ``unbounded.bench.overhead``). Run: python benchmarks/overhead.py"""

from unbounded.bench.overhead import main

if __name__ == "__main__":
    raise SystemExit(main())
