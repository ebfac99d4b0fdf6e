"""cogsync benchmark: signed UpdateRecords and ListRecords against the bare endpoint.

    python -m benchmarks.run [--seconds 5] [--warmup 1] [--concurrency 16] [--rounds 1]
                             [--json results.json]

Starts a real cogsync server (one uvicorn worker, SQLite, the default durability), then
measures in one run, on the same server: the bare do-nothing endpoint
(``GET /_cogsync/health``), UpdateRecords with 10 patches, and ListRecords of a dataset
holding 100 records (each call a new sync session, as a client's sync starts). The
baseline is measured again right before each scenario and each scenario is reported as
a ratio of it, because the machines this runs on are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.load import PhaseResult, run_phase
from benchmarks.machine import machine
from benchmarks.server import BenchServer
from benchmarks.signing import Signer
from benchmarks.workloads import ListWorkload, UpdateWorkload

CEILING = "client ceiling (fixed reply)"
BARE = "bare endpoint"
UPDATE = "UpdateRecords (10 patches)"
LIST = "ListRecords (100 records)"
TARGETS = {UPDATE: 0.40, LIST: 0.50}


def phase_row(name: str, round_no: int, result: PhaseResult,
         baseline: PhaseResult | None) -> dict[str, Any]:
    ratio = result.throughput / baseline.throughput if baseline and baseline.throughput else None
    target = TARGETS.get(name)
    return {
        "scenario": name,
        "round": round_no,
        "requests": result.requests,
        "errors": result.errors,
        "error_statuses": {str(k): v for k, v in result.statuses.items()},
        "first_error": result.first_error,
        "seconds": round(result.seconds, 3),
        "throughput_rps": round(result.throughput, 1),
        "p50_ms": round(result.percentile(50) * 1000, 2),
        "p90_ms": round(result.percentile(90) * 1000, 2),
        "p99_ms": round(result.percentile(99) * 1000, 2),
        "client_cpu_pct": round(100 * result.client_cpu / result.seconds, 1)
        if result.seconds else 0.0,
        "server_cpu_pct": round(100 * result.server_cpu / result.seconds, 1)
        if result.seconds else 0.0,
        "server_cpu_us_per_request": round(1e6 * result.server_cpu / result.requests)
        if result.requests else None,
        "ran_out_of_requests": result.exhausted,
        "baseline_rps": round(baseline.throughput, 1) if baseline else None,
        "ratio_to_bare": round(ratio, 3) if ratio is not None else None,
        "target": target,
        "met": (ratio >= target) if (ratio is not None and target is not None) else None,
    }


def client_ceiling(args: argparse.Namespace) -> PhaseResult:
    """The load generator against a trivial fixed-reply server (a process of its own):
    what this client can drive at most with these settings on this machine."""
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.fixed_server"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().split()[1])
        request = [f"GET /_cogsync/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()]
        seconds = min(args.seconds, 2.0)
        run_phase("127.0.0.1", port, request, concurrency=args.concurrency,
                  seconds=min(args.warmup, 0.5), repeat=True)
        return run_phase("127.0.0.1", port, request, concurrency=args.concurrency,
                         seconds=seconds, repeat=True, server_pid=process.pid)
    finally:
        process.terminate()
        process.wait(10)


class Bench:
    def __init__(self, server: BenchServer, args: argparse.Namespace):
        self.server = server
        self.args = args
        self.rows: list[dict[str, Any]] = []
        signer = Signer(server)
        self.updates, self.lists = UpdateWorkload(signer), ListWorkload(signer)

    def phase(self, requests: list[bytes], seconds: float, repeat: bool) -> PhaseResult:
        return run_phase(self.server.host, self.server.port, requests,
                         concurrency=self.args.concurrency, seconds=seconds, repeat=repeat,
                         server_pid=self.server.pid)

    def bare(self) -> PhaseResult:
        request = [f"GET /_cogsync/health HTTP/1.1\r\nHost: {self.server.host}:"
                   f"{self.server.port}\r\n\r\n".encode()]
        self.phase(request, min(self.args.warmup, 0.5), repeat=True)
        return self.phase(request, self.args.seconds, repeat=True)

    def scenario(self, name: str, round_no: int, warm: Callable[[], PhaseResult],
                 prepare: Callable[[PhaseResult], tuple[list[bytes], bool]],
                 after: Callable[[PhaseResult], None] = lambda _: None) -> None:
        """Warm the scenario up, build its signed requests, measure the bare endpoint, then
        the scenario: the baseline is right next to what it is compared with."""
        warm_result = warm()
        after(warm_result)
        requests, repeat = prepare(warm_result)
        baseline = self.bare()
        result = self.phase(requests, self.args.seconds, repeat)
        after(result)
        self.rows.append(phase_row(BARE, round_no, baseline, None))
        self.rows.append(phase_row(name, round_no, result, baseline))
        print_rows(self.rows[-2:])

    def run(self) -> str:
        """Every round of every scenario, then the write check ("" when it passed)."""
        self.measure()
        return self.updates.verify(self.server)

    def measure(self) -> None:
        """Sets the workloads' data up, then every round of every scenario."""
        updates, lists = self.updates, self.lists
        updates.setup(self.server)
        lists.setup(self.server)
        for round_no in range(1, self.args.rounds + 1):

            def warm_updates() -> PhaseResult:
                batch = updates.build(max(100, int(self.args.warmup * 2500)))
                return self.phase(batch, self.args.warmup, repeat=False)

            def prepare_updates(warm: PhaseResult) -> tuple[list[bytes], bool]:
                # Unique writes for twice the fastest rate seen so far (signing is ~0.1 ms
                # a request); a phase that still runs out ends early and says so.
                rate = max([warm.throughput or 1000.0] + [
                    r["throughput_rps"] for r in self.rows if r["scenario"] == UPDATE])
                return updates.build(int(rate * self.args.seconds * 2) + 200), False

            if "update" in self.args.scenarios:
                self.scenario(UPDATE, round_no, warm_updates, prepare_updates, updates.count)
            if "list" not in self.args.scenarios:
                continue

            list_requests = lists.build()  # signed now: valid for the next 15 minutes
            lists.check(self.server, list_requests)

            def warm_lists(requests: list[bytes] = list_requests) -> PhaseResult:
                return self.phase(requests, self.args.warmup, repeat=True)

            def prepare_lists(_: PhaseResult,
                              requests: list[bytes] = list_requests) -> tuple[list[bytes], bool]:
                return requests, True

            self.scenario(LIST, round_no, warm_lists, prepare_lists)
            last = _last_row(self.rows, LIST)
            if last["errors"] == 0:
                lists.check(self.server, list_requests)


def _last_row(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return [r for r in rows if r["scenario"] == name][-1]


HEADER = (f"{'scenario':28} {'round':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
           f"{'p99 ms':>7} {'errors':>6} {'cli cpu':>7} {'srv cpu':>7} {'srv us/req':>10} "
           f"{'vs bare':>7}")


def print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        ratio = f"{r['ratio_to_bare']:.0%}" if r["ratio_to_bare"] is not None else ""
        print(f"{r['scenario']:28} {r['round']:5d} {r['throughput_rps']:8.0f} "
              f"{r['p50_ms']:7.2f} {r['p90_ms']:7.2f} {r['p99_ms']:7.2f} {r['errors']:6d} "
              f"{r['client_cpu_pct']:6.0f}% {r['server_cpu_pct']:6.0f}% "
              f"{r['server_cpu_us_per_request'] or 0:10d} {ratio:>7}"
              + ("  (ran out of pre-built requests)" if r["ran_out_of_requests"] else ""),
              flush=True)
        if r["first_error"]:
            print(f"    first error: {r['first_error']}", flush=True)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: the median over rounds of throughput and of the ratio to bare."""
    summary = []
    for name in (BARE, UPDATE, LIST):
        mine = [r for r in rows if r["scenario"] == name]
        if not mine:
            continue
        ratios = [r["ratio_to_bare"] for r in mine if r["ratio_to_bare"] is not None]
        ratio = statistics.median(ratios) if ratios else None
        cost = statistics.median(r["server_cpu_us_per_request"] or 0 for r in mine)
        bare_cost = statistics.median(r["server_cpu_us_per_request"] or 0
                                      for r in rows if r["scenario"] == BARE)
        target = TARGETS.get(name)
        summary.append({
            "scenario": name,
            "throughput_rps": round(statistics.median(r["throughput_rps"] for r in mine), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in mine), 2),
            "p90_ms": round(statistics.median(r["p90_ms"] for r in mine), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in mine), 2),
            "errors": sum(r["errors"] for r in mine),
            "ratio_to_bare": round(ratio, 3) if ratio is not None else None,
            "server_cpu_us_per_request": cost,
            # bare's server CPU per request over this one's: the throughput ratio that a
            # server busy on its own core would show; less sensitive to a noisy machine.
            "cpu_cost_ratio": round(bare_cost / cost, 3) if cost and bare_cost else None,
            "target": target,
            "met": (ratio >= target) if ratio is not None and target is not None else None,
        })
    return summary


def add_phase_arguments(parser: argparse.ArgumentParser) -> None:
    """--seconds, --warmup and --concurrency: how long and how hard each phase runs."""
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="timed length of each phase (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="untimed warm-up before each scenario (default 1)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="keep-alive connections, one request in flight each (default 16)")


def check_phase_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The checks of ``add_phase_arguments``' options."""
    if not 0 < args.seconds <= 300 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--seconds must be in (0, 300], --warmup >= 0, --concurrency >= 1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_phase_arguments(parser)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every scenario with its baseline; medians are reported")
    parser.add_argument("--scenarios", type=lambda text: text.split(","),
                        default=["update", "list"],
                        help="comma-separated subset of: update,list (default both)")
    parser.add_argument("--sqlite-synchronous", choices=["NORMAL", "FULL"],
                        help="passed to the server (its default: NORMAL, which in WAL mode "
                        "keeps every acknowledged write through a crash of the process)")
    parser.add_argument("--json", metavar="FILE", help="write the results to this file")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 when a target is not met")
    args = parser.parse_args(argv)
    check_phase_arguments(parser, args)
    if not args.scenarios or not set(args.scenarios) <= {"update", "list"}:
        parser.error("--scenarios takes update, list or update,list")

    info = machine()
    print(f"cogsync benchmark: {info['nproc']} x {info['cpu_model']}, {info['python']}, "
          f"load average {info['loadavg_at_start'][0]:.2f}; concurrency {args.concurrency}, "
          f"{args.seconds:g} s per phase, {args.rounds} round(s)", flush=True)
    print(HEADER, flush=True)
    ceiling = phase_row(CEILING, 0, client_ceiling(args), None)
    print_rows([ceiling])
    extra = ["--sqlite-synchronous", args.sqlite_synchronous] if args.sqlite_synchronous else []
    with tempfile.TemporaryDirectory(prefix="cogsync-bench-") as folder:
        server = BenchServer(Path(folder), extra).start()
        try:
            print(f"server: {server.endpoint} (pid {server.pid}), one worker, SQLite, "
                  f"synchronous={args.sqlite_synchronous or 'NORMAL (default)'}", flush=True)
            bench = Bench(server, args)
            problem = bench.run()
        finally:
            server.stop()

    summary = summarize(bench.rows)
    print("\nsummary (median over rounds)")
    bare_rps = summary[0]["throughput_rps"]
    if ceiling["throughput_rps"]:
        print(f"  load generator: {ceiling['throughput_rps']:.0f} req/s against a fixed reply;"
              f" the bare endpoint ran at {bare_rps / ceiling['throughput_rps']:.0%} of that")
    for s in summary:
        if s["target"] is None:
            continue
        verdict = "met" if s["met"] else "NOT met"
        cpu = f"{s['cpu_cost_ratio']:.0%}" if s["cpu_cost_ratio"] is not None else "n/a"
        print(f"  {s['scenario']:28} {s['throughput_rps']:8.0f} req/s = "
              f"{s['ratio_to_bare']:.0%} of bare (target >= {s['target']:.0%}): {verdict}"
              f"  [server CPU per request: {s['server_cpu_us_per_request']:.0f} us, "
              f"bare's is {cpu} of that]")
    errors = sum(r["errors"] for r in [ceiling, *bench.rows])
    print(f"request errors: {errors}")
    if problem:
        print(f"write check FAILED: {problem}")
    elif "update" in args.scenarios:
        print("write check: every acknowledged UpdateRecords applied exactly once")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info,
            "settings": {"seconds": args.seconds, "warmup": args.warmup,
                         "concurrency": args.concurrency, "rounds": args.rounds,
                         "scenarios": args.scenarios,
                         "sqlite_synchronous": args.sqlite_synchronous or "NORMAL",
                         "workers": 1, "database": "sqlite"},
            "client_ceiling": ceiling,
            "phases": bench.rows,
            "summary": summary,
            "request_errors": errors,
            "write_check": problem or "ok",
        }, indent=2) + "\n")
    if errors or problem:
        return 1
    if args.strict and not all(s["met"] for s in summary if s["met"] is not None):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
