"""What one start of ``cogsync serve`` costs: CPU seconds, wall time, and the imports.

    python -m benchmarks.startup [--starts 8] [--traced 3] [--source DIR ...] [--json FILE]

Each start runs ``python -m cogsync serve --port 0`` on a new, empty data folder (what a
test suite does when it starts a server per module) until the server says it is ready,
then stops it with SIGTERM. For each start it records the wall time to the ready line,
the CPU seconds the process had used by then (from /proc), and the CPU seconds of the
whole life of the process (start, ready, shutdown). A second start on the same folder
(a restart, the database exists) is measured too, and, where the code has it, the
``--ephemeral --print-json`` start that test harnesses use.

Give ``--source`` more than once (a checkout of another commit, say) to compare
versions: the starts of the sources alternate, so a change in the machine's load
touches each alike; compare the medians of one run, never figures of two runs. One more
three more starts of each source (``--traced``) run with ``python -X importtime``: they
count the modules a start imports, and rank the imported packages by their own import
time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

from benchmarks.procs import process_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
TOP_IMPORTS = 10
TRACED_STARTS = 3


@cache
def _supports(source: Path, flag: str) -> bool:
    done = subprocess.run([sys.executable, "-m", "cogsync", "serve", "--help"], cwd=source,
                          capture_output=True, text=True, timeout=60)
    return flag in done.stdout


def _is_ready(line: str) -> bool:
    return line.startswith("Ready.") or line.startswith("{")


def one_start(source: Path, args: list[str], *, importtime: bool = False) -> dict[str, Any]:
    """Starts, waits for the ready line, stops; the costs, and stderr when asked."""
    command = [sys.executable, *(["-X", "importtime"] if importtime else []),
               "-m", "cogsync", "serve", "--port", "0", "--log-level", "warning", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGSYNC_")}
    began = time.monotonic()
    process = subprocess.Popen(command, cwd=source, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(process.stderr or ()), daemon=True)
    drain.start()
    ready_at: float | None = None
    cpu_ready = 0.0
    assert process.stdout is not None
    for line in process.stdout:
        if _is_ready(line):
            ready_at = time.monotonic() - began
            cpu_ready = process_cpu_seconds(process.pid)
            break
    if ready_at is None:
        process.kill()
        process.wait()
        raise RuntimeError("the server did not start:\n" + "".join(errors))
    process.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = status
    drain.join(10)
    return {
        "wall_to_ready": ready_at,
        "cpu_to_ready": cpu_ready,
        "cpu_total": usage.ru_utime + usage.ru_stime,
        "stderr": "".join(errors) if importtime else "",
    }


def import_ranking(stderr: str) -> list[tuple[str, float]]:
    """Own import time by top-level package, in seconds, largest first."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line[len("import time:"):].split("|")
        top = name.strip().split(".")[0]
        totals[top] = totals.get(top, 0.0) + int(own) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])


def _modes(source: Path, folder: Path) -> dict[str, list[str]]:
    """The kinds of start measured, in order, with their flags: a new data folder, the
    same folder again (a restart), and an ephemeral start where the code has one."""
    modes = {"new data folder": ["--data-dir", str(folder)],
             "restart": ["--data-dir", str(folder)]}
    if _supports(source, "--ephemeral"):
        modes["--ephemeral --print-json"] = ["--ephemeral", "--print-json"]
    return modes


def measure(sources: list[Path], starts: int, traced: int = TRACED_STARTS) -> dict[str, Any]:
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {str(s): {} for s in sources}
    with tempfile.TemporaryDirectory(prefix="cogsync-startup-") as scratch:
        for round_ in range(starts):
            for number, source in enumerate(sources):
                folder = Path(scratch) / f"{number}-{round_}"
                for mode, args in _modes(source, folder).items():
                    result = one_start(source, args)
                    samples[str(source)].setdefault(mode, []).append(result)
        rankings: dict[str, list[dict[str, float]]] = {str(s): [] for s in sources}
        modules: dict[str, int] = {}
        for round_ in range(traced):
            for number, source in enumerate(sources):
                folder = Path(scratch) / f"importtime-{number}-{round_}"
                traced = one_start(source, ["--data-dir", str(folder)], importtime=True)
                rankings[str(source)].append(dict(import_ranking(traced["stderr"])))
                modules[str(source)] = traced["stderr"].count("import time:") - 1
    report: dict[str, Any] = {"starts": starts, "traced": traced, "sources": []}
    for source in sources:
        entry: dict[str, Any] = {"source": str(source), "modes": {}}
        for mode, runs in samples[str(source)].items():
            entry["modes"][mode] = {
                key: round(statistics.median(r[key] for r in runs), 3)
                for key in ("wall_to_ready", "cpu_to_ready", "cpu_total")
            }
        runs = rankings[str(source)]
        medians = {name: statistics.median(run.get(name, 0.0) for run in runs)
                   for name in set().union(*runs)}
        top = sorted(medians.items(), key=lambda item: -item[1])[:TOP_IMPORTS]
        entry["imports"] = [(name, round(seconds, 3)) for name, seconds in top]
        entry["modules_imported"] = modules[str(source)]
        report["sources"].append(entry)
    return report


def render(report: dict[str, Any]) -> str:
    lines = [f"medians of {report['starts']} starts each"]
    for entry in report["sources"]:
        lines.append(f"\n{entry['source']}")
        lines.append(f"  {'start':28} {'wall to ready':>14} {'CPU to ready':>13} "
                     f"{'CPU, whole run':>15}")
        for mode, figures in entry["modes"].items():
            lines.append(f"  {mode:28} {figures['wall_to_ready']:>13.2f}s "
                         f"{figures['cpu_to_ready']:>12.2f}s {figures['cpu_total']:>14.2f}s")
        lines.append(f"  modules imported by a start: {entry['modules_imported']}")
        lines.append(f"  own import time by package (-X importtime, median of {report['traced']} "
                     "starts; wall-clock, so it swells with the load): " + ", ".join(
                         f"{name} {seconds:.3f}s" for name, seconds in entry["imports"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=8, help="starts per kind and source")
    parser.add_argument("--source", type=Path, action="append",
                        help="a checkout to start cogsync from (default: this one); repeatable")
    parser.add_argument("--traced", type=int, default=TRACED_STARTS,
                        help="starts per source under -X importtime")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    sources = [s.resolve() for s in (args.source or [ROOT])]
    report = measure(sources, max(1, args.starts), max(1, args.traced))
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
