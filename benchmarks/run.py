"""Run the performance benchmarks and write ``benchmarks/results.md`` (+ results.json, figures).

Usage (from the repository root; ``make bench`` runs the first form)::

    python -m benchmarks.run                    # every benchmark, full sizes (~20 min, 2 cores)
    python -m benchmarks.run --quick            # smallest sizes: a smoke run (~2 min)
    python -m benchmarks.run --only store       # one benchmark; others kept from results.json

Benchmarks: ``throughput`` (models), ``pipeline`` (efficiency, scaling, memory),
``peer`` (STARFM vs a numpy reference), ``store`` (Zarr vs raw disk). A full
run that has both ``throughput`` and ``pipeline`` also writes the cost section
of ``infra/README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    figures,
    pipeline_bench,
    report,
    scaling,
    starfm_peer,
    store_bench,
    task_budget,
    throughput,
)
from benchmarks.common import ROOT, machine

BENCHMARKS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "throughput": throughput.run,
    "pipeline": pipeline_bench.run,
    "peer": starfm_peer.run,
    "store": store_bench.run,
    "chain": scaling.run,
}
OUT = ROOT / "benchmarks"
README = ROOT / "infra" / "README.md"
COST_BEGIN, COST_END = "<!-- cost:begin (benchmarks/run.py) -->", "<!-- cost:end -->"


def _not_measured(results: dict[str, Any]) -> list[str]:
    notes = []
    if "gpu" not in results.get("throughput", {"gpu": True}):
        notes.append(
            "GPU throughput (fp32, bf16) and the bf16 peak fraction: "
            f"{report.NO_GPU}; the GPU rows of the cost model are estimates."
        )
    if "chain" not in results:
        notes.append(
            "STAC search and COG reading: the pipeline benchmarks feed synthetic in-memory cubes "
            "(the full chain is `--only chain`, not run here)."
        )
    notes.append("Multi-node scaling: one machine with 2 shared cores; 1 vs 2 local workers only.")
    return notes


def write_cost_section(results: dict[str, Any], readme: Path = README) -> None:
    """Replace the text between the cost markers of ``infra/README.md`` (or the placeholder)."""
    body = "\n".join([COST_BEGIN, *report.cost_section(results), *_chain_cost(results), COST_END])
    text = readme.read_text()
    if COST_BEGIN in text:
        head, rest = text.split(COST_BEGIN, 1)
        text = head + body + rest.split(COST_END, 1)[1]
    else:
        head, rest = text.split("## Cost\n", 1)
        after = rest.split("\n## ", 1)
        tail = "\n## " + after[1] if len(after) > 1 else "\n"
        text = f"{head}## Cost\n\n{body}\n{tail}"
    readme.write_text(text)


def _chain_cost(results: dict[str, Any]) -> list[str]:
    """The CPU cost of a tile-year from the full-chain runs (absent: nothing)."""
    if not results.get("chain", {}).get("rows"):
        return []
    rows = results["chain"]["rows"]
    when = sorted({r.get("started", "?")[:10] for r in rows})
    commits = sorted({r.get("commit", "?") for r in rows})
    return [
        "Also measured end to end (STAC search, COG reads, cubes, model, fuse, store; "
        '`benchmarks/results.md`, "Full chain at growing sizes"; measured '
        f"{', '.join(when)}, commit {', '.join(commits)}), scaled linearly to the "
        "tile-year's pixel-days from each model's largest run; 3 bands, STARFM with the demo's "
        "5×5 window and ResStf tiny after 1 epoch (the rows above: 6 bands, default sizes), so "
        "a production tile-year costs more:",
        "",
        "| model (run) | CPU per pixel-day | CPU core-h | CPU cost |",
        "|---|---|---|---|",
        *scaling.cost_lines(results["chain"]),
        "",
        "GPU nodes: no GPU figure exists (no GPU was lent to the measuring session); the GPU "
        "columns above are the FLOP-count estimate and every GPU cost is an assumption.",
        "",
    ]


def _extra_sections(results: dict[str, Any]) -> list[str]:
    """The full-chain and task-budget sections (rendered here, not by ``report``)."""
    lines: list[str] = []
    if results.get("chain", {}).get("rows"):
        lines += [*scaling.section(results["chain"]), "", "![full chain](figures/chain.png)", ""]
    budget = results.get("task_budget")
    if budget:
        notes = tuple(budget.get("notes", ()))
        lines += [*task_budget.section(budget["rows"], notes), ""]
    return lines


def render(results: dict[str, Any], out: Path = OUT) -> None:
    """Write ``out/results.md`` (+ figures) from ``results``; extra sections before the notes."""
    _figures(results, out / "figures")
    text = report.render(results)
    extra = "\n".join(_extra_sections(results))
    marker = "## Not measured"
    if extra and marker in text:
        head, tail = text.split(marker, 1)
        text = f"{head}{extra}\n{marker}{tail}"
    elif extra:
        text += "\n" + extra
    (out / "results.md").write_text(text)


def run(names: list[str], quick: bool, out: Path = OUT) -> dict[str, Any]:
    """Run ``names``; merge into ``out/results.json`` when only some are run; render."""
    start = time.perf_counter()
    path = out / "results.json"
    results: dict[str, Any] = {}
    if set(names) != set(BENCHMARKS) and path.exists():
        results = json.loads(path.read_text())
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        t0 = time.perf_counter()
        results[name] = BENCHMARKS[name](quick)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    results.update(
        machine=machine(),
        command="python -m benchmarks.run " + " ".join(sys.argv[1:]),
        wall_s=time.perf_counter() - start,
    )
    results["not_measured"] = _not_measured(results)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))
    render(results, out)
    return results


def _figures(results: dict[str, Any], folder: Path) -> None:
    if "throughput" in results:
        figures.throughput_figure(results["throughput"], folder / "throughput.png")
    if "pipeline" in results:
        figures.scaling_figure(results["pipeline"], folder / "scaling.png")
    if results.get("chain", {}).get("rows"):
        scaling.figure(results["chain"], folder / "chain.png")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--quick``, ``--only NAME`` (repeatable), ``--out DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes (smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder of results.md/json")
    args = parser.parse_args(argv)
    results = run(args.only or list(BENCHMARKS), args.quick, args.out)
    full = not args.quick and args.out == OUT
    if full and "throughput" in results and "pipeline" in results:
        write_cost_section(results)
    print(f"[bench] wrote {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
