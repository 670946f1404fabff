"""``bench report DIR``: Markdown tables and PNG plots from ``results.jsonl``.

* ``report.md`` — score per task × size × method (the paper's table), then per cell: items, mean
  score, mean and median cost, tokens, calls and seconds per item, failures.
* ``score_vs_context.png`` — score against context length (log x axis), one line per method, one
  panel per task (the paper's figure 1).
* ``cost_distribution.png`` — per-item cost per method as box plots: USD when the model has a price,
  and always tokens and seconds per item (a local model costs $0, so tokens and time are its cost).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError
from .results import ResultRecord, compaction_line, latest, read_results, size_label

REPORT_FILE = "report.md"
SCORE_PLOT = "score_vs_context.png"
COST_PLOT = "cost_distribution.png"

#: Preferred column / legend order; methods not listed follow in order of appearance.
METHOD_ORDER = ("direct", "summarize", "retrieval", "rlm-nosub", "rlm", "rlms")
TASK_ORDER = ("niah", "oolong", "oolong-pairs", "codeqa", "multihop")


@dataclass(slots=True)
class Cell:
    """Every record of one (model, task, size, method)."""

    model: str
    task: str
    size_tokens: int
    method: str
    records: list[ResultRecord] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.records)

    @property
    def scores(self) -> list[float]:
        return [r.score for r in self.records]

    @property
    def score(self) -> float:
        return statistics.fmean(self.scores) if self.records else math.nan

    @property
    def score_se(self) -> float:
        """Standard error of the mean score (0 for a single item)."""
        if self.n < 2:
            return 0.0
        return statistics.stdev(self.scores) / math.sqrt(self.n)

    @property
    def costs(self) -> list[float] | None:
        """Per-item cost in USD; None when any item's cost is unknown."""
        values = [r.cost_usd for r in self.records]
        if any(v is None for v in values):
            return None
        return [float(v) for v in values if v is not None]

    @property
    def tokens(self) -> list[int]:
        return [r.input_tokens + r.output_tokens for r in self.records]

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.records]

    @property
    def calls(self) -> list[int]:
        return [r.calls for r in self.records]

    def truncated_share(self) -> float | None:
        flags = [r.notes.get("truncated") for r in self.records if "truncated" in r.notes]
        return sum(bool(f) for f in flags) / len(flags) if flags else None

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts


def _order(values: Iterable[str], preferred: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(values))
    return [v for v in preferred if v in seen] + [v for v in seen if v not in preferred]


def collect(records: Iterable[ResultRecord]) -> dict[tuple[str, str, int, str], Cell]:
    """Cells keyed by (model, task, size, method), from the latest record of each key."""
    cells: dict[tuple[str, str, int, str], Cell] = {}
    for r in latest(records):
        key = (r.model, r.task, r.size_tokens, r.method)
        cells.setdefault(key, Cell(r.model, r.task, r.size_tokens, r.method)).records.append(r)
    return cells


@dataclass(slots=True)
class Report:
    markdown: str
    files: list[Path]
    cells: dict[tuple[str, str, int, str], Cell]


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.0f}%"


def _usd(values: list[float] | None, how: str) -> str:
    if values is None:
        return "n/a"
    if not values:
        return "–"
    value = statistics.fmean(values) if how == "mean" else statistics.median(values)
    if value == 0:
        return "$0"
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def _num(values: Sequence[float], digits: int = 0) -> str:
    if not values:
        return "–"
    value = statistics.fmean(values)
    return f"{value:,.{digits}f}"


def markdown_tables(cells: dict[tuple[str, str, int, str], Cell], title: str | None = None) -> str:
    """The report's Markdown: one score matrix and one detail table per model."""
    lines = [f"# {title or 'Benchmark report'}", ""]
    models = _order((k[0] for k in cells), ())
    for model in models:
        mine = {k: c for k, c in cells.items() if k[0] == model}
        tasks = _order((k[1] for k in mine), TASK_ORDER)
        methods = _order((k[3] for k in mine), METHOD_ORDER)
        sizes = sorted({k[2] for k in mine})
        n_items = sum(c.n for c in mine.values())
        failed = sum(c.failed for c in mine.values())
        lines += [
            f"## {model}",
            "",
            f"{n_items} results ({failed} failed: error or timeout, scored 0). Score is the mean over items "
            "(± its standard error); cost, tokens, calls and seconds are per item.",
            "",
            "### Score",
            "",
            "| task | size | " + " | ".join(methods) + " |",
            "|---|---:|" + "---:|" * len(methods),
        ]
        for task in tasks:
            for size in sizes:
                row = []
                for method in methods:
                    cell = mine.get((model, task, size, method))
                    if cell is None:
                        row.append("")
                    else:
                        se = f" ± {100 * cell.score_se:.0f}" if cell.n > 1 else ""
                        row.append(f"{_pct(cell.score)}{se} (n={cell.n})")
                if any(row):
                    lines.append(f"| {task} | {size_label(size)} | " + " | ".join(row) + " |")
        lines += [
            "",
            "### Per method",
            "",
            "| task | size | method | n | score | mean cost | median cost | tokens | calls | seconds | failed | notes |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for task in tasks:
            for size in sizes:
                for method in methods:
                    cell = mine.get((model, task, size, method))
                    if cell is None:
                        continue
                    notes = []
                    share = cell.truncated_share()
                    if share:
                        notes.append(f"context cut in {100 * share:.0f}% of items")
                    statuses = {s: k for s, k in cell.statuses().items() if s not in ("ok", "final")}
                    if statuses:
                        notes.append(", ".join(f"{s}: {k}" for s, k in sorted(statuses.items())))
                    lines.append(
                        f"| {task} | {size_label(size)} | {method} | {cell.n} | {_pct(cell.score)} | "
                        f"{_usd(cell.costs, 'mean')} | {_usd(cell.costs, 'median')} | {_num(cell.tokens)} | "
                        f"{_num(cell.calls, 1)} | {_num(cell.seconds, 1)} | {cell.failed} | {'; '.join(notes)} |"
                    )
        lines.append("")
        lines += claims_markdown(cells, model)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ claims

#: The paper's claims as checkable targets (the issue's acceptance targets).
BEATS_DIRECT_TASKS = ("niah", "oolong", "oolong-pairs")
BEATS_DIRECT_FROM = 32 * 1024
BEATS_RETRIEVAL_TASKS = ("oolong", "oolong-pairs")
NIAH_TARGET = 0.9
NIAH_UP_TO = 4 * 1024 * 1024


def _verdict(checks: list[bool], complete: bool) -> str:
    if not checks:
        return "not yet run"
    if not all(checks):
        return "missed"
    return "met" if complete else "met so far (not every case run)"


def claims(cells: dict[tuple[str, str, int, str], Cell], model: str) -> list[tuple[str, str, list[str]]]:
    """(target, verdict, evidence lines) for each of the paper's claims, from this model's cells."""

    def score(task: str, size: int, method: str) -> float | None:
        cell = cells.get((model, task, size, method))
        # Rounded, so that partial-credit crumbs (oolong gives 0.75**91 for an answer 91 off) don't
        # decide a comparison that the table shows as a tie.
        return None if cell is None or cell.n == 0 else round(cell.score, 3)

    def n(task: str, size: int, *methods: str) -> str:
        counts = [cells[(model, task, size, m)].n for m in methods if (model, task, size, m) in cells]
        return f"(n={min(counts)})" if counts else ""

    sizes = sorted({k[2] for k in cells if k[0] == model})
    out: list[tuple[str, str, list[str]]] = []

    checks, lines, complete = [], [], True
    for task in BEATS_DIRECT_TASKS:
        compared = 0
        for size in (s for s in sizes if s >= BEATS_DIRECT_FROM):
            r, d = score(task, size, "rlm"), score(task, size, "direct")
            if r is None or d is None:
                continue
            compared += 1
            checks.append(r > d)
            lines.append(
                f"{task} {size_label(size)}: rlm {_pct(r)} vs direct {_pct(d)} {n(task, size, 'rlm', 'direct')} "
                f"{'✓' if r > d else '✗'}"
            )
        complete = complete and compared > 0
    out.append(
        ("`rlm` beats `direct` at every size ≥ 32K on niah, oolong, oolong-pairs", _verdict(checks, complete), lines)
    )

    checks, lines, complete = [], [], True
    for task in BEATS_RETRIEVAL_TASKS:
        compared = 0
        for size in sizes:
            r, b = score(task, size, "rlm"), score(task, size, "retrieval")
            if r is None or b is None:
                continue
            compared += 1
            checks.append(r >= b)
            lines.append(
                f"{task} {size_label(size)}: rlm {_pct(r)} vs retrieval {_pct(b)} "
                f"{n(task, size, 'rlm', 'retrieval')} {'✓' if r >= b else '✗'}"
            )
        complete = complete and compared > 0
    out.append(("`rlm` ≥ `retrieval` on oolong and oolong-pairs", _verdict(checks, complete), lines))

    checks, lines = [], []
    for size in (s for s in sizes if s <= NIAH_UP_TO):
        r = score("niah", size, "rlm")
        if r is None:
            continue
        checks.append(r >= NIAH_TARGET)
        lines.append(
            f"niah {size_label(size)}: rlm {_pct(r)} {n('niah', size, 'rlm')} {'✓' if r >= NIAH_TARGET else '✗'}"
        )
    reached = max((s for s in sizes if score("niah", s, "rlm") is not None), default=0)
    out.append(("niah ≥ 90% (`rlm`) at every size up to 4M tokens", _verdict(checks, reached >= NIAH_UP_TO), lines))
    return out


def claims_markdown(cells: dict[tuple[str, str, int, str], Cell], model: str) -> list[str]:
    lines = ["### The paper's claims on this model", ""]
    for target, verdict, evidence in claims(cells, model):
        lines.append(f"- **{target}: {verdict}.** " + ("; ".join(evidence) if evidence else ""))
    lines.append("")
    return lines


# ------------------------------------------------------------------------------------------- plots


def _method_styles(methods: Sequence[str]) -> dict[str, dict[str, object]]:
    palette = {
        "direct": "#7f7f7f",
        "summarize": "#bcbd22",
        "retrieval": "#1f77b4",
        "rlm-nosub": "#ff7f0e",
        "rlm": "#d62728",
        "rlms": "#9467bd",
    }
    markers = {"direct": "o", "summarize": "v", "retrieval": "s", "rlm-nosub": "D", "rlm": "*", "rlms": "P"}
    extra = ["#2ca02c", "#8c564b", "#e377c2", "#17becf"]
    out: dict[str, dict[str, object]] = {}
    for i, m in enumerate(methods):
        out[m] = {"color": palette.get(m, extra[i % len(extra)]), "marker": markers.get(m, "o")}
    return out


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, or MissingExtraError naming the extra."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError(
            "bench report draws its plots with matplotlib, which is not installed: pip install 'unbounded[bench]' "
            "(or pass --no-plots for the tables alone)"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scores(cells: dict[tuple[str, str, int, str], Cell], path: Path, model: str) -> Path:
    """Score vs. context length, one panel per task, log-scale x axis, one line per method."""
    plt = _pyplot()
    from matplotlib.ticker import FixedLocator, NullLocator

    mine = {k: c for k, c in cells.items() if k[0] == model}
    tasks = _order((k[1] for k in mine), TASK_ORDER)
    methods = _order((k[3] for k in mine), METHOD_ORDER)
    sizes = sorted({k[2] for k in mine})
    styles = _method_styles(methods)
    cols = min(len(tasks), 3)
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows + 0.6), squeeze=False)
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        for rank, method in enumerate(methods):
            pts = [(s, mine[(model, task, s, method)]) for s in sizes if (model, task, s, method) in mine]
            if not pts:
                continue
            # Methods are dodged sideways a little so that equal scores do not hide each other.
            dodge = 2 ** (0.07 * (rank - (len(methods) - 1) / 2))
            xs = [s * dodge for s, _ in pts]
            ys = [100 * c.score for _, c in pts]
            errs = [100 * c.score_se for _, c in pts]
            style = styles[method]
            ax.errorbar(
                xs,
                ys,
                yerr=errs,
                label=method,
                color=style["color"],
                marker=style["marker"],
                markersize=9 if method == "rlm" else 6,
                linewidth=2.2 if method == "rlm" else 1.5,
                capsize=3,
                zorder=3 if method == "rlm" else 2,
            )
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(sizes, [size_label(s) for s in sizes])
        if len(sizes) == 1:
            ax.set_xlim(sizes[0] / 1.6, sizes[0] * 1.6)
        else:
            ax.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
        ax.set_ylim(-5, 105)
        ax.set_title(task)
        ax.set_xlabel("context length (tokens, log scale)")
        ax.set_ylabel("score (%)")
        ax.grid(True, alpha=0.3)
    by_label: dict[str, object] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            by_label.setdefault(lab, h)
    labels = [m for m in methods if m in by_label]
    handles = [by_label[m] for m in labels]
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, 0.0))
    n_items = max((c.n for c in mine.values()), default=0)
    fig.suptitle(
        f"Score vs. context length — {model}\n(n ≤ {n_items} items per point; bars: ± standard error)", fontsize=11
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_costs(cells: dict[tuple[str, str, int, str], Cell], path: Path, model: str) -> Path:
    """Per-item cost per method (all tasks and sizes pooled) as box plots: USD if priced, tokens, seconds."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    mine = {k: c for k, c in cells.items() if k[0] == model}
    methods = _order((k[3] for k in mine), METHOD_ORDER)
    styles = _method_styles(methods)
    pooled: dict[str, list[ResultRecord]] = {m: [] for m in methods}
    for (_, _, _, method), cell in mine.items():
        pooled[method].extend(cell.records)
    usd_known = all(r.cost_usd is not None for rs in pooled.values() for r in rs)
    priced = usd_known and any((r.cost_usd or 0) > 0 for rs in pooled.values() for r in rs)
    panels: list[tuple[str, dict[str, list[float]]]] = []
    if priced:
        panels.append(("cost per item (USD)", {m: [float(r.cost_usd or 0) for r in rs] for m, rs in pooled.items()}))
    panels.append(
        (
            "tokens per item (input + output)",
            {m: [r.input_tokens + r.output_tokens for r in rs] for m, rs in pooled.items()},
        )
    )
    panels.append(("seconds per item", {m: [r.seconds for r in rs] for m, rs in pooled.items()}))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(max(4.8 * len(panels), 10), 4.8), squeeze=False, layout="constrained"
    )
    for ax, (label, data) in zip(axes.flat, panels, strict=True):
        names = [m for m in methods if data[m]]
        values = [[max(v, 1e-9) for v in data[m]] for m in names]
        box = ax.boxplot(values, patch_artist=True, widths=0.6, showmeans=True, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
        for patch, m in zip(box["boxes"], names, strict=True):
            patch.set_facecolor(str(styles[m]["color"]))
            patch.set_alpha(0.55)
        for i, m in enumerate(names, start=1):  # the items themselves, jittered
            ys = data[m]
            xs = [i + 0.18 * ((j % 5) - 2) / 2 for j in range(len(ys))]
            ax.scatter(xs, [max(v, 1e-9) for v in ys], s=10, color="black", alpha=0.5, zorder=3)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_short_number))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(label)
        ax.grid(True, axis="y", alpha=0.3)
    note = "" if priced else "\nthe model has no price ($0), so tokens and time are its cost"
    fig.suptitle(f"Cost per item by method — {model}, all tasks and sizes pooled{note}", fontsize=11)
    fig.supxlabel(
        "box: quartiles · line: median · ▲: mean · dots: single items · log scale", fontsize=9, color="#444444"
    )
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _short_number(value: float, _pos: object = None) -> str:
    """Axis labels like 500, 8K, 1.2M, 0.01 instead of 10^3 notation."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}K"
    return f"{value:g}"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in text).strip("_")


def write_report(
    dirs: Sequence[Path], *, out: Path | None = None, plots: bool = True, title: str | None = None
) -> Report:
    """Read every ``results.jsonl`` in ``dirs``, write ``report.md`` (and the PNGs) to ``out``."""
    records: list[ResultRecord] = []
    for d in dirs:
        records.extend(read_results(d))
    if not records:
        raise ValueError(f"no results in {', '.join(map(str, dirs))} (run `unbounded bench run` first)")
    cells = collect(records)
    out = Path(out) if out is not None else Path(dirs[0])
    out.mkdir(parents=True, exist_ok=True)
    markdown = markdown_tables(cells, title)
    compacted = compaction_line(latest(records))
    if compacted:
        markdown += f"\n## Compaction\n\n{compacted[0].upper()}{compacted[1:]}.\n"
    files: list[Path] = []
    if plots:
        models = _order((k[0] for k in cells), ())
        lines = ["## Plots", ""]
        for model in models:
            suffix = "" if len(models) == 1 else f"-{_slug(model)}"
            score_path = out / SCORE_PLOT.replace(".png", f"{suffix}.png")
            cost_path = out / COST_PLOT.replace(".png", f"{suffix}.png")
            files.append(plot_scores(cells, score_path, model))
            files.append(plot_costs(cells, cost_path, model))
            lines += [f"![score vs. context length]({score_path.name})", "", f"![cost per item]({cost_path.name})", ""]
        markdown = markdown + "\n" + "\n".join(lines)
    report_path = out / REPORT_FILE
    report_path.write_text(markdown, encoding="utf-8")
    files.insert(0, report_path)
    return Report(markdown, files, cells)
