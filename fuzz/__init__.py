"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser and state machine an attacker reaches (issue 18).

Why beside the property tests: hypothesis draws random inputs and stops short of deep states; a coverage-guided
fuzzer keeps the inputs that open new branches and so gets behind length checks, checksums and state changes.

Layout: `targets/` holds one module per attacker-controlled input (`fuzz_one(data)` calls the real code path and
checks what must hold beyond "no exception"; `seeds()` makes its starting inputs with the project's own
encoders); `registry.py` names them; `runner.py` runs one under atheris (`python -m fuzz run NAME`);
`campaign.py` is `make fuzz`; `replay.py` reruns saved inputs without atheris (crash reproduction, the smoke test
in `make test`); `coverage_replay.py` measures what a corpus reaches. Committed data: `corpus/NAME/` (seeds,
`python -m fuzz.seeds`), `dicts/NAME.dict` (protocol tokens) and `regressions/NAME/` (inputs that once crashed).

Nothing in the project imports this package except its tests (the import contracts place it under tests/ and
above bench/); it must stay light to import, because the runner imports the code under test only after atheris
has hooked the import system.
"""
