"""One module per fuzz target: `fuzz_one(data)` and `seeds()` (see fuzz/target.py and fuzz/registry.py)."""
