"""Crash storms: a real sync in a child process, SIGKILLed at seeded instants, restarted, then checked.

`child` runs one Dagster materialisation of the log and mirror assets and
reports each phase it enters; `driver` advances the sandbox clock, starts
children, kills them where its seeded plan says, and runs the final clean
sync, the full rebuild and the reference run; `invariants` checks what must
hold afterwards. `python -m ledger_pipeline_tests.storm --kills 500` is the
soak (`make soak`).
"""
