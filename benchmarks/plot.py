"""Draws the results of ``benchmarks.all`` into one PNG (matplotlib: the ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from benchmarks.half_peak import P99_TARGET_MS  # noqa: E402
from benchmarks.run import BARE, LIST, UPDATE  # noqa: E402

_SHORT = {BARE: "bare endpoint", UPDATE: "UpdateRecords\n(10 patches)",
          LIST: "ListRecords\n(100 records)"}


def _throughput(ax: Axes, results: dict[str, Any]) -> None:
    series: list[tuple[str, list[float]]] = []
    for server in results["servers"]:
        rates = {s["scenario"]: s["throughput_rps"] for s in server["summary"]}
        series.append((f"{server['database']}, {server['workers']} worker(s)",
                       [rates.get(name, 0.0) for name in _SHORT]))
    if results["moto"]:
        moto = [r["throughput_rps"] for r in results["moto"]["phases"]]
        series.append(("moto DynamoDB", [0.0, *moto]))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series):
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(_SHORT))]
        ax.bar(positions, [v or float("nan") for v in values], width, label=label)
    ax.set_xticks(range(len(_SHORT)), list(_SHORT.values()))
    ax.set_yscale("log")
    ax.set_ylabel("requests per second (log)")
    ax.set_title("Throughput, closed loop")
    ax.legend(fontsize="small")


def _half_peak(ax: Axes, results: dict[str, Any]) -> None:
    rows = [(server["database"], h) for server in results["servers"]
            for h in server["half_peak"]]
    labels = [f"{db}\n{_SHORT[h['scenario']].split(chr(10))[0]}" for db, h in rows]
    for i, key in enumerate(("p50_ms", "p90_ms", "p99_ms")):
        ax.bar([x + (i - 1) * 0.27 for x in range(len(rows))], [h[key] for _, h in rows],
               0.27, label=key.split("_")[0])
    ax.axhline(P99_TARGET_MS, color="red", linestyle="--", linewidth=1,
               label=f"p99 target ({P99_TARGET_MS:g} ms, SQLite)")
    ax.set_xticks(range(len(rows)), labels, fontsize="small")
    ax.set_ylabel("latency, ms")
    ax.set_title("Latency at half of peak, open loop")
    ax.legend(fontsize="small")


def _growth_axes(ax: Axes, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("stored records (log)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")


def _growth_latency(ax: Axes, growth: dict[str, Any]) -> None:
    records = [s["records"] for s in growth["steps"]]
    for key, name, color in (("update", "UpdateRecords", "C0"), ("list", "ListRecords", "C1")):
        for percentile, style in (("p50_ms", "-o"), ("p99_ms", ":s")):
            ax.plot(records, [s[key][percentile] for s in growth["steps"]], style,
                    color=color, label=f"{name} {percentile.split('_')[0]}")
    _growth_axes(ax, "latency, ms (one request at a time)",
                 f"Cost growth: latency ({growth['database']})")


def _growth_memory(ax: Axes, growth: dict[str, Any]) -> None:
    records = [s["records"] for s in growth["steps"]]
    ax.plot(records, [s["rss_mib"] for s in growth["steps"]], "-o", label="server RSS")
    if all(s["data_mib"] is not None for s in growth["steps"]):
        ax.plot(records, [s["data_mib"] for s in growth["steps"]], "--o",
                label="database files")
    _growth_axes(ax, "MiB", f"Cost growth: memory ({growth['database']})")


def draw(results: dict[str, Any], path: Path) -> None:
    panels = []
    if results["servers"]:
        panels.append(lambda ax: _throughput(ax, results))
    if any(s["half_peak"] for s in results["servers"]):
        panels.append(lambda ax: _half_peak(ax, results))
    if results["growth"]:
        panels.append(lambda ax: _growth_latency(ax, results["growth"]))
        panels.append(lambda ax: _growth_memory(ax, results["growth"]))
    if not panels:
        raise ValueError("nothing to plot")
    columns = 2 if len(panels) > 1 else 1
    rows = (len(panels) + 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4.8 * rows),
                                squeeze=False)
    for panel, ax in zip(panels, axes.flat, strict=False):
        panel(ax)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    info = results["machine"]
    figure.suptitle(f"cogsync {info['code']} on {info['nproc']} x {info['cpu_model']}, "
                    f"{info['python']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
