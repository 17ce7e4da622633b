"""The words of docs/benchmarks.md: how each measure is made (no figures: those come from JSON)."""

from __future__ import annotations

from typing import Final

METHOD: Final = """\
How the numbers are made: every library is imported before any timer starts; the peers of
a comparison run in the same process and invocation, interleaved (each round starts with
another peer), after a warm-up, and the figure is the median of the rounds. Absolute
times on a shared 2-core machine are noise; the ratios are what to read. Peers:

- **vendor recipe**: `asyncio.gather` over coroutines each in `async with asyncio.Semaphore(lanes)`;
- **chunks + remain check**: the same per chunk, with an awaited account read between chunks;
- **aiometer**: `aiometer.amap(fn, items, max_at_once=lanes)`;
- **N worker tasks**: a plain pool of tasks pulling from one iterator (the lower bound: no
  ledger, no report, no rechecks);
- **LanePool**: `run_batch` with a sink, and `map` consumed by `async for`, the credit
  ledger on (a finite budget, a recheck every 100 items)."""

DESCRIPTIONS: Final = {
    "overhead": (
        "Each item is `async def noop(x): return x`, which never suspends, so what is timed is "
        "each peer's own machinery per item: creating coroutines or tasks, taking and giving "
        "back a lane, LanePool's ledger (reserve, commit, a recheck every 100 items), handing "
        "the result to a counting sink. The worker pool has nothing else to do: each worker "
        "runs items back to back, so it is the floor. The vendor recipe's cost per item grows "
        "with the batch because every coroutine exists at once and the garbage collector keeps "
        "walking them. Times are this process's CPU time (the no-op work never waits, so it is "
        "all CPU), which other processes on a shared machine cannot inflate."
    ),
    "memory": (
        "Each peer runs in a fresh process: after a warm-up it collects garbage, reads its RSS, "
        "resets the kernel's peak mark (`/proc/self/clear_refs`) and reads the peak after the "
        "run. LanePool, the workers and the chunked recipe read a generator and send results to "
        "a counting sink; aiometer needs a sized sequence and gets a `range`; the vendor recipe "
        "gets the generator too, but `gather` holds a coroutine and a result per item."
    ),
    "utilization": (
        "Each item sleeps a lognormal time (median 20 ms, sigma 0.6; the same seeded draws for "
        "every peer of a round) in 5 lanes; 1000 items; every 50 items the account is re-read "
        "and a read takes 5 ms. The chunked recipe waits for the slowest item of each chunk, "
        "then for the read; LanePool reads beside the work. Utilization is busy lane-seconds "
        "(each item's measured sleep) over lanes x makespan, the makespan being the whole call "
        "(LanePool's reads before and after the batch count against it); the second column "
        "uses the first start to the last end instead. The worker pool makes no reads: the "
        "ceiling. The plot shows every momentary dip (a few microseconds between one item's "
        "end and the next one's start)."
    ),
    "e2e": (
        "Searches through the real client and pool against the emulator, in two cases. At zero "
        "latency (the emulator's recorded answers replayed by a bare server, since the emulator "
        "itself would saturate its core first) the client's CPU is the bottleneck, the worst case "
        "for any overhead: the client does more per request than the raw loop (it validates the "
        "options, builds typed, frozen models of the page's results, runs each call under its "
        "retry policy, and in the pool keeps the credit ledger), some of it cheaper (orjson, a "
        "body encoded once, headers set on the session), and the rate shows the balance. With a "
        "server latency, the case users live in, throughput is bound by lanes / mean latency: that "
        "extra CPU overlaps other lanes' waits and shows only as far as it delays a lane's next "
        "request. `raw` is N worker tasks posting with a plain `aiohttp.ClientSession` and `await "
        "response.json()` (no models, retries or ledger). The no-pool row separates what the "
        "client costs from what the pool costs. Every run opens its own session or client (and "
        "pool) and pays their fixed costs, the pool's account read on entry among them: a short "
        "lane-bound run feels those, a long batch would not."
    ),
    "overshoot": (
        "The job must leave a floor of credits on the account; overshoot is how far the "
        "account ended below it (as sole consumer, what the job spent past its budget). The "
        "searches cost 1-12 credits each (`pages=N`), about twice the budget in all. With "
        "*drain*, another consumer spends credits on the same account while the job runs "
        "(`Emulator.drain`), which no job can prevent, only notice: the bound issue 5 sets is "
        "lanes x max cost. `vendor recipe + spent counter` is the recipe with the obvious guard "
        "(read the account once, check `spent + cost <= budget` before each call, add after a "
        "success): calls in flight are invisible to it. The drain target is judged for "
        "LanePool with a recheck every 8 items only: the bound holds once a recheck has seen "
        "the drain, and with the defaults (every 100 items) a batch this short checks about "
        "once, so the credits drained after that check add to its overshoot."
    ),
    "soak": (
        "One `run_batch` through the client and LanePool against the emulator in another "
        "process with seeded faults from the whole matrix (1010, 429 with a short, absent or "
        "garbage `Retry-After`, 5xx as JSON and HTML, 1001, 1002, 443, no results, resets "
        "before and after the charge, truncated JSON, wrong types, a large and a slow body, "
        "400, an unknown code), 1 ms latency, 32 lanes, a short retry policy. Phase 1 reads RSS "
        "after a 10 % warm-up and every 10 % after (tracemalloc off: its own tables would "
        "dominate). Phase 2 continues the same batch with tracemalloc on and snapshots every "
        "10 %; a site grows steadily when it grew in 7 of 9 intervals and by > 64 KiB. A "
        "failed item is kept by the report with its error, by contract; phase 2 drops those "
        "tracebacks so that they cannot mask another growth, and a separate all-failing batch "
        "measures what one failed item keeps."
    ),
}
