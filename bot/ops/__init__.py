"""Operations: running the bot and watching it run.

`serving` is `siaga run` (polling or webhook, the health endpoint beside it),
`health` answers liveness, readiness and `/metrics`, `metrics` holds the
counters of one worker, `logs` writes one key=value line per event with no
secret or personal data, and `scheduler` wakes the sweeps that read the
database.
"""
