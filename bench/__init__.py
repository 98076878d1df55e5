"""The performance benchmark of issue 6: the pipeline against dlt and the fetch-and-parse floor.

Run it with `make bench` (or `python -m bench --help`); docs/performance.md has the figures and
what they mean. Every contender runs in its own process against one sandbox served over
localhost HTTP, so each one's peak RSS is its own and all of them pay the same transport.
"""
