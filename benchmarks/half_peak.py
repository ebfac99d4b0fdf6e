"""Latency at half of peak load: an open loop at 50% of the throughput that the closed
loop just measured on the same server, each latency timed from when its request was due."""

from __future__ import annotations

from typing import Any

from benchmarks.load import PhaseResult, percentile, run_open_phase
from benchmarks.run import LIST, UPDATE, Bench

P99_TARGET_MS = 20.0  # on SQLite


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def half_peak(bench: Bench, name: str, peak_rps: float, seconds: float,
              connections: int = 64) -> dict[str, Any]:
    """Sends ``name``'s requests at half of ``peak_rps`` for ``seconds``; the writes are
    new, valid UpdateRecords like the closed loop's, counted for the write check."""
    rate = peak_rps / 2
    if name == UPDATE:
        requests, repeat = bench.updates.build(int(rate * seconds * 1.1) + 50), False
    elif name == LIST:
        requests, repeat = bench.lists.build(), True
    else:
        raise ValueError(name)
    result: PhaseResult = run_open_phase(
        bench.server.host, bench.server.port, requests, rate=rate, seconds=seconds,
        repeat=repeat, connections=connections, server_pid=bench.server.pid)
    if name == UPDATE:
        bench.updates.count(result)
    return {
        "scenario": name,
        "peak_rps": round(peak_rps, 1),
        "target_rps": round(rate, 1),
        "throughput_rps": round(result.throughput, 1),
        "requests": result.requests,
        "errors": result.errors,
        "first_error": result.first_error,
        "ran_out_of_requests": result.exhausted,
        "p50_ms": _ms(result.percentile(50)),
        "p90_ms": _ms(result.percentile(90)),
        "p99_ms": _ms(result.percentile(99)),
        "max_ms": _ms(max(result.latencies, default=0.0)),
        # how late the client itself sent: part of every latency above, so keep it small
        "send_lag_p99_ms": _ms(percentile(result.send_lags, 99)),
        "server_cpu_pct": round(100 * result.server_cpu / result.seconds, 1)
        if result.seconds else 0.0,
    }
