"""`python -m bench` (or `make bench`): run every benchmark in turn; one that fails
is reported and the others still run (exit status 1 then)."""

import sys
import traceback

from bench import (
    alarm_burst,
    alarm_isolation,
    alarm_latency,
    idle_memory,
    sse_fanout,
    tv_pages,
    video_relay,
)

# The guard matters: alarm_isolation starts a process with "spawn", which imports
# this module again.
if __name__ == "__main__":
    failed = []
    for benchmark in (
        idle_memory,
        alarm_latency,
        alarm_burst,
        alarm_isolation,
        tv_pages,
        sse_fanout,
        video_relay,
    ):
        try:
            benchmark.main()
        except Exception:
            traceback.print_exc()
            failed.append(benchmark.__name__)
        print()
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
