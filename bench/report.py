"""Turn a results dict into the Markdown report and its PNG plot.

The generated part of `docs/benchmarks.md` sits between two HTML comments;
the hand-written analysis around it survives every rerun.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"
ROUTER = "router"
LITELLM = "litellm"
DIRECT = "direct"


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def find_cell(
    results: dict[str, Any], path: str, delay: float, stream: bool, concurrency: int
) -> dict[str, Any] | None:
    """The cell for one path at one setting, if it was measured."""
    for cell in results["cells"]:
        if (
            cell["path"] == path
            and _num(cell["delay_ms"]) == delay
            and cell["stream"] == stream
            and cell["concurrency"] == concurrency
        ):
            found: dict[str, Any] = cell
            return found
    return None


def added(results: dict[str, Any], cell: dict[str, Any], key: str) -> float:
    """`key` of a proxy's cell minus the same figure of the direct path.

    At concurrency 1 the direct figure comes from the same interleaved run.
    """
    paired = _num(cell.get(f"direct_{key}"))
    if not math.isnan(paired):
        return _num(cell[key]) - paired
    direct = find_cell(
        results, DIRECT, _num(cell["delay_ms"]), cell["stream"], cell["concurrency"]
    )
    if direct is None:
        return math.nan
    return _num(cell[key]) - _num(direct[key])


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 9 and issue 2 targets against this run (upstream delay 0 ms).

    Every router path but the GC experiment is judged: `router` runs the
    router's default classifier, `router (rules)` the rules classifier.
    """
    rows: list[dict[str, Any]] = []

    def row(measure: str, target: str, value: float, ok: bool, shown: str) -> None:
        verdict = "n/a" if math.isnan(value) else ("met" if ok else "MISSED")
        rows.append(
            {
                "measure": measure,
                "target": target,
                "measured": shown,
                "verdict": verdict,
            }
        )

    levels = sorted({c["concurrency"] for c in results["cells"]})
    low, capacity = levels[0], (32 if 32 in levels else levels[-1])
    paths = [p for p in dict.fromkeys(c["path"] for c in results["cells"])]
    judged = [p for p in paths if p == ROUTER or p == f"{ROUTER} (rules)"]
    for path in judged:
        _judge_router(results, path, low, capacity, row)
    for each in results["decision"]:
        if each["classifier"] == "rules":
            p99, cpu = _num(each["p99_ms"]), _num(each.get("cpu_p99_ms"))
            row(
                "rules decision (classify + policy) p99",
                "<= 0.5 ms (issue 2)",
                p99,
                p99 <= 0.5,
                f"{p99:.3f} ms wall ({cpu:.3f} ms CPU)",
            )
    return rows


def _judge_router(
    results: dict[str, Any], path: str, low: int, capacity: int, row: Any
) -> None:
    litellm_c1 = find_cell(results, LITELLM, 0.0, False, low)
    for stream in (False, True):
        c1 = find_cell(results, path, 0.0, stream, low)
        if c1 is None:
            continue
        kind = ", streaming" if stream else ""
        p50, p99 = added(results, c1, "p50"), added(results, c1, "p99")
        row(
            f"{path}: added latency, c={low}{kind}, p50",
            "<= 1.5 ms",
            p50,
            p50 <= 1.5,
            f"{p50:.2f} ms",
        )
        row(
            f"{path}: added latency, c={low}{kind}, p99",
            "<= 4 ms",
            p99,
            p99 <= 4,
            f"{p99:.2f} ms",
        )
        if litellm_c1 is not None and not stream:
            ratio = added(results, litellm_c1, "p50") / p50 if p50 > 0 else math.nan
            row(
                f"{path}: LiteLLM's added p50 / this",
                ">= 10x",
                ratio,
                ratio >= 10,
                f"{ratio:.1f}x",
            )
    for stream in (False, True):
        kind = "streaming" if stream else "non-streaming"
        cell = find_cell(results, path, 0.0, stream, capacity)
        litellm = find_cell(results, LITELLM, 0.0, stream, capacity)
        if cell is not None and not stream:
            rps = _num(cell["rps"])
            row(
                f"{path}: req/s, c={capacity}, {kind}",
                ">= 1,500 (issue 2)",
                rps,
                rps >= 1500,
                f"{rps:,.0f}",
            )
        if cell is not None and litellm is not None:
            ratio = _num(cell["rps"]) / max(_num(litellm["rps"]), 1e-9)
            row(
                f"{path}: req/s c={capacity} {kind} / LiteLLM's",
                ">= 15x",
                ratio,
                ratio >= 15,
                f"{ratio:.1f}x",
            )
    streamed = find_cell(results, path, 0.0, True, low)
    if streamed is not None:
        ttft = added(results, streamed, "ttft_p50")
        row(
            f"{path}: added TTFT, c={low}, p50",
            "<= 2 ms",
            ttft,
            ttft <= 2,
            f"{ttft:.2f} ms",
        )
    rss = [_num(m["after_load_mb"]) for m in results["memory"] if m["path"] == path]
    if rss:
        worst = max(rss)
        row(
            f"{path}: RSS after load",
            "<= 150 MB",
            worst,
            worst <= 150,
            f"{worst:.0f} MB",
        )


def render(results: dict[str, Any], plot_name: str) -> str:
    """The generated Markdown block (without the markers)."""
    meta = results["meta"]
    machine, versions = meta["machine"], meta["versions"]
    settings = meta["settings"]
    lines = [
        f"Measured {meta['date']} in {meta['duration_s']} s with:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"- Machine: {machine['nproc']} CPUs, {machine['cpu']}, "
        f"{machine.get('memory_gb', '?')} GB, Linux "
        f"{machine['kernel']}; load average {machine['load_before'][0]} before, "
        f"{machine['load_after'][0]} after (the machine is shared).",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        f"- Router classifier: {meta['classifier']}. Load generator: "
        f"{settings['load_generator']}"
        + (
            " (TTFT with the aiohttp generator)"
            if settings["load_generator"] == "wrk"
            else ""
        )
        + f"; {settings['duration_s']:g} s per measurement. Concurrency 1 is "
        "measured with the aiohttp generator sending one request to each path in "
        "turn (LiteLLM paired with direct apart), so neighbouring samples share "
        "the machine's state; its req/s is what one connection gets.",
        "- Event loop and HTTP parser per process: "
        + "; ".join(
            f"{name}: "
            + ", ".join(
                f"{lib} {'yes' if used else 'no'}"
                for lib, used in info["pid_libraries"].items()
            )
            for name, info in meta["servers"].items()
            if "pid_libraries" in info
        )
        + ".",
    ]
    lines += [
        f"- Decision-cache hits in the {name}: {info['cache_hits']} of "
        f"{info['routed']} routed requests (every prompt is unique)."
        for name, info in meta["servers"].items()
        if "cache_hits" in info
    ]
    lines += [f"- {note}" for note in results.get("notes", [])]

    lines += [
        "",
        "### Targets (upstream delay 0 ms)",
        "",
        *(
            [
                "Smoke run: its measurements are too short and its concurrency "
                "too low to judge any target; the verdicts only show the "
                "report works.",
                "",
            ]
            if meta.get("quick")
            else []
        ),
        "| measure | target | measured | verdict |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['measure']} | {r['target']} | {r['measured']} | {r['verdict']} |"
        for r in evaluate_targets(results)
    ]

    delays = sorted({_num(c["delay_ms"]) for c in results["cells"]})
    for delay in delays:
        lines += [
            "",
            f"### Upstream delay {delay:g} ms",
            "",
            "Latencies in ms; *added* is the path's percentile minus the direct "
            "path's at the same setting; TTFT is the time to the first SSE event; "
            "proxy CPU is the proxy process's user+system time per request.",
            "",
            "| traffic | c | path | req/s | p50 | p95 | p99 | added p50 | "
            "added p95 | added p99 | added TTFT p50 | added TTFT p99 "
            "| proxy CPU ms/req | errors |",
            "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for cell in results["cells"]:
            if _num(cell["delay_ms"]) != delay:
                continue
            is_direct = cell["path"] == DIRECT

            def show(
                key: str, cell: dict[str, Any] = cell, direct: bool = is_direct
            ) -> str:
                return "" if direct else _fmt(added(results, cell, key))

            lines.append(
                f"| {'stream' if cell['stream'] else 'plain'} | {cell['concurrency']} "
                f"| {cell['path']} | {_num(cell['rps']):,.0f} | {_fmt(cell['p50'])} "
                f"| {_fmt(cell['p95'])} | {_fmt(cell['p99'])} | {show('p50')} "
                f"| {show('p95')} | {show('p99')} | {show('ttft_p50')} "
                f"| {show('ttft_p99')} | {_fmt(cell.get('cpu_ms_per_request'), 3)} "
                f"| {cell.get('note') or cell['errors']} |"
            )

    lines += [
        "",
        "### Resident memory (VmRSS of the proxy process and its children)",
        "",
        "| path | upstream delay | idle MB | after load MB |",
        "|---|--:|--:|--:|",
    ]
    lines += [
        f"| {m['path']} | {_num(m['delay_ms']):g} ms | {_num(m['idle_mb']):.0f} "
        f"| {_num(m['after_load_mb']):.0f} |"
        for m in results["memory"]
    ]
    lines += [
        "",
        "### Decision latency (classify + policy)",
        "",
        "Wall-clock latency, and the CPU time of the deciding thread (what a "
        "decision costs when the scheduler does not take the core away).",
        "",
        "| classifier | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms | samples | how |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    lines += [
        f"| {d['classifier']} | {_fmt(d['p50_ms'], 4)} | {_fmt(d['p99_ms'], 4)} "
        f"| {_fmt(d.get('cpu_p50_ms'), 4)} | {_fmt(d.get('cpu_p99_ms'), 4)} "
        f"| {d['samples']} | {d['note']} |"
        for d in results["decision"]
    ]
    lines += ["", f"![Throughput, added latency and memory]({plot_name})"]
    return "\n".join(lines)


def _fmt(value: Any, digits: int = 2) -> str:
    number = _num(value)
    return "-" if math.isnan(number) else f"{number:.{digits}f}"


def write_report(results: dict[str, Any], doc: Path, plot: Path) -> None:
    """Write the plot and replace the generated block of `doc` (or create it)."""
    write_plot(results, plot)
    block = f"{START}\n{render(results, plot.name)}\n{END}"
    if doc.exists():
        text = doc.read_text(encoding="utf-8")
        if START in text and END in text:
            head, rest = text.split(START, 1)
            tail = rest.split(END, 1)[1]
            doc.write_text(head + block + tail, encoding="utf-8")
            return
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(f"# Benchmarks\n\n{block}\n", encoding="utf-8")


def write_plot(results: dict[str, Any], plot: Path) -> None:
    """Three panels: throughput, added latency at c=1, memory after load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = list(dict.fromkeys(c["path"] for c in results["cells"]))
    proxies = [p for p in paths if p != DIRECT]
    levels = sorted({c["concurrency"] for c in results["cells"]})
    low, capacity = levels[0], (32 if 32 in levels else levels[-1])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    colours = {p: f"C{i}" for i, p in enumerate(paths)}
    width = 0.8 / max(len(paths), 1)

    ax = axes[0]
    for i, path in enumerate(paths):
        values = []
        for stream in (False, True):
            cell = find_cell(results, path, 0.0, stream, capacity)
            values.append(_num(cell["rps"]) if cell else math.nan)
        ax.bar(
            [x + i * width for x in (0, 1)],
            values,
            width,
            label=path,
            color=colours[path],
        )
    ax.set_xticks([0.4 - width / 2, 1.4 - width / 2], ["non-streaming", "streaming"])
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log)")
    ax.set_title(f"Throughput at concurrency {capacity}, delay 0 ms")
    ax.legend(fontsize=8)

    ax = axes[1]
    labels = ["p50", "p95", "p99"]
    for i, path in enumerate(proxies):
        cell = find_cell(results, path, 0.0, False, low)
        values = [
            max(added(results, cell, k), 0.01) if cell else math.nan for k in labels
        ]
        ax.bar(
            [x + i * width for x in range(3)],
            values,
            width,
            label=path,
            color=colours[path],
        )
    ax.set_xticks([x + width * (len(proxies) - 1) / 2 for x in range(3)], labels)
    ax.set_yscale("log")
    ax.set_ylabel("ms added over direct (log)")
    ax.set_title(f"Added latency at concurrency {low}, non-streaming")
    ax.legend(fontsize=8)

    ax = axes[2]
    rss = [
        max(
            (_num(m["after_load_mb"]) for m in results["memory"] if m["path"] == p),
            default=math.nan,
        )
        for p in proxies
    ]
    ax.bar(proxies, rss, color=[colours[p] for p in proxies])
    ax.axhline(150, color="grey", linestyle="--", linewidth=1, label="150 MB target")
    ax.set_ylabel("MB")
    ax.set_title("Resident memory after load")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)

    fig.tight_layout()
    plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(plot, dpi=110)
    plt.close(fig)
