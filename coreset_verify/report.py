"""Reports: Markdown with PNG plots, for audits and campaigns.

Plots are drawn with ``matplotlib.figure.Figure`` (the Agg canvas), never
through ``pyplot``, so no global backend state is touched.

* :func:`write_audit_report`: a table of pruners by checks (and a PNG of the
  same), then each pruner's checks with their messages.
* :func:`write_campaign_report`: per layer, the error against the number of
  kept neurons: each trial's found worst case, the certified upper bounds,
  the theoretical epsilons of each bound kind and the error on data; then the
  summary table of :func:`~coreset_verify.audit.summarize`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import fail
from .errors import MissingDependencyError

__all__ = ["write_audit_report", "write_campaign_report"]

_VERDICT_VALUE = {"pass": 1.0, "skip": 0.5, "xfail": 0.25, "XPASS": 0.75, "FAIL": 0.0}
_SYMBOL = {"pass": "pass", "skip": "skip", "xfail": "xfail", "XPASS": "XPASS", "FAIL": "**FAIL**"}
_KIND_STYLE = {"pointwise": ":", "uniform": "--", "paper": "-."}


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "reports need matplotlib: pip install 'coreset-verify[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def _path(value: Any, func: str, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise fail(func, name, "a non-empty path (str or os.PathLike)", value)
    return Path(value)


def _folder(folder: str | os.PathLike, func: str) -> Path:
    """``folder``, created when missing (``OSError`` when it cannot be)."""
    path = _path(folder, func, "folder")
    if path.exists() and not path.is_dir():
        raise fail(func, "folder", "a directory (created when missing)", str(path))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "layer"


# ------------------------------------------------------------------- audits


def write_audit_report(reports: Mapping[str, Any] | Iterable[Any],
                       folder: str | os.PathLike) -> Path:
    """Write ``audit.md``, ``audit.png`` and ``audit.json`` into ``folder``.

    Parameters
    ----------
    reports : mapping name -> AuditReport, or iterable of AuditReport
        As returned by :func:`~coreset_verify.audit.run_audit`.
    folder : path-like
        Created when missing.

    Returns
    -------
    pathlib.Path
        The Markdown file.

    Raises
    ------
    InvalidArgumentError
        For bad ``reports`` or a ``folder`` that is an existing file.
    MissingDependencyError
        Without matplotlib.
    OSError
        When the folder or its files cannot be written.
    """
    func = "write_audit_report"
    if not isinstance(reports, (Mapping, Iterable)) or isinstance(reports, (str, bytes)):
        raise fail(func, "reports", "a mapping name -> AuditReport or a list of AuditReport",
                   type(reports).__name__)
    items = list(reports.items()) if isinstance(reports, Mapping) else \
        [(getattr(r, "pruner", None), r) for r in reports]
    if not items:
        raise fail(func, "reports", "at least one AuditReport", "none")
    for name, rep in items:
        if not (hasattr(rep, "results") and hasattr(rep, "to_markdown")):
            raise fail(func, "reports", "AuditReport values (from run_audit or "
                       "check_pruner)", f"{type(rep).__name__} for {name!r}")
    out = _folder(folder, func)
    checks = [r.name for r in items[0][1].results]
    header = ("| pruner | passed | skipped | "
              + " | ".join(c.removeprefix("check_") for c in checks) + " |")
    lines = ["# Pruner audit", "", "![checks by pruner](audit.png)", "", header,
             "|" + "---|" * (len(checks) + 3)]
    for name, rep in items:
        verdicts = {r.name: r.verdict for r in rep.results}
        score = _score(rep)
        cells = " | ".join(_SYMBOL[verdicts[c]] if c in verdicts else "-" for c in checks)
        lines.append(f"| {name} | {score} | {cells} |")
    lines += ["", "Verdicts: pass, FAIL, skip (the claims make the check moot), xfail "
              "(declared expected failure), XPASS (expected to fail but passed).", ""]
    lines += [rep.to_markdown() for _, rep in items]
    _audit_png(items, checks, out / "audit.png")
    (out / "audit.json").write_text(json.dumps({n: r.to_dict() for n, r in items}, indent=1))
    md = out / "audit.md"
    md.write_text("\n".join(lines))
    return md


def _score(report: Any) -> str:
    """``passed/ran | skipped``: a skipped check is neither passed nor failed."""
    c = report.counts
    return f"{c['passed']}/{c['passed'] + c['failed']} | {c['skipped']}"


def _audit_png(items, checks, path: Path) -> None:
    from matplotlib.colors import ListedColormap

    grid = np.array([[_VERDICT_VALUE[{r.name: r.verdict for r in rep.results}.get(c, "skip")]
                      for c in checks] for _, rep in items])
    fig = _figure(1.2 + 0.75 * len(checks), 1.0 + 0.42 * len(items))
    ax = fig.add_subplot()
    cmap = ListedColormap(["#d62728", "#ff9896", "#dddddd", "#98df8a", "#2ca02c"])
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(checks)), [c.removeprefix("check_").replace("_", "\n")
                                       for c in checks], fontsize=8)
    ax.set_yticks(range(len(items)), [n for n, _ in items], fontsize=9)
    for i, (_, rep) in enumerate(items):
        verdicts = {r.name: r.verdict for r in rep.results}
        for j, c in enumerate(checks):
            ax.text(j, i, verdicts.get(c, "-"), ha="center", va="center", fontsize=7)
    ax.set_title("Audit battery: checks by pruner")
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------- campaigns


def write_campaign_report(path_jsonl: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Write ``campaign.md`` and one ``error_vs_size_<layer>.png`` per layer.

    Parameters
    ----------
    path_jsonl : path-like
        A file written by :func:`~coreset_verify.audit.run_campaign`.
    folder : path-like
        Created when missing.

    Returns
    -------
    pathlib.Path
        The Markdown file.
    """
    from .audit.campaign import read_campaign, summarize

    func = "write_campaign_report"
    source = _path(path_jsonl, func, "path_jsonl")
    if not source.is_file():
        raise fail(func, "path_jsonl", "an existing campaign file", str(source))
    out = _folder(folder, func)
    summary = summarize(source)
    records = [r for r in read_campaign(source).records if "error" not in r]
    lines = ["# Campaign report", "",
             f"Source: `{source.name}`; {summary.trials} trials ({summary.errors} failed to "
             f"run); delta = {summary.delta:g}. Errors are `max_i |F_i - F~_i| / T_i`: "
             "*found* is a lower bound on the worst case over the ball (the search's "
             "best input), *certified* a sound upper bound when the search proved one, "
             "*theoretical* the bound's epsilon (median over seeds), *data* the largest "
             "error over the data inputs.", ""]
    for layer in sorted({r["layer"] for r in records}):
        png = f"error_vs_size_{_slug(layer)}.png"
        _campaign_png([r for r in records if r["layer"] == layer], layer, summary.delta,
                      out / png)
        lines += [f"## Layer {layer}", "", f"![error against size]({png})", ""]
    lines += ["## Failure rates", "",
              "Failure: a trial whose found worst case exceeds the bound's epsilon. The "
              "interval is Clopper-Pearson; *exceeds delta* when its lower end is above "
              "delta. Empirical epsilon: the 1 - delta quantile of the found worst cases.",
              "", summary.to_markdown()]
    md = out / "campaign.md"
    md.write_text("\n".join(lines))
    return md


def _by_size(recs: list[dict], value) -> tuple[np.ndarray, np.ndarray]:
    sizes = sorted({r["size"] for r in recs})
    values = []
    for s in sizes:
        vals = [v for r in recs if r["size"] == s and (v := value(r)) is not None
                and math.isfinite(v)]
        values.append(np.median(vals) if vals else math.nan)
    return np.array(sizes), np.array(values, dtype=float)


def _null_locator():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def _campaign_png(recs: list[dict], layer: str, delta: float, path: Path) -> None:
    fig = _figure(7.0, 4.6)
    ax = fig.add_subplot()
    colors = [f"C{i}" for i in range(10)]
    for i, pruner in enumerate(sorted({r["pruner"] for r in recs})):
        own, color = [r for r in recs if r["pruner"] == pruner], colors[i % 10]
        jitter = 1 + 0.03 * (i - 1)
        ax.scatter([r["size"] * jitter for r in own], [max(r["found"], 1e-12) for r in own],
                   s=10, alpha=0.35, color=color)
        sizes, found = _by_size(own, lambda r: r["found"])
        ax.plot(sizes, found, "o-", color=color, label=f"{pruner}: found (median)")
        sizes, upper = _by_size(own, lambda r: r.get("upper_bound"))
        if np.any(np.isfinite(upper)):
            ax.plot(sizes, upper, "v", color=color, markersize=7,
                    label=f"{pruner}: proved upper bound (median)")
        sizes, data = _by_size(own, lambda r: (r.get("data_error") or {}).get("max"))
        if np.any(np.isfinite(data)):
            ax.plot(sizes, data, "s-", color=color, alpha=0.45, linewidth=0.8,
                    markersize=4, label=f"{pruner}: data (median of max)")
        for kind in sorted({k for r in own for k in (r.get("epsilon") or {})}):
            sizes, eps = _by_size(own, lambda r, kind=kind: (r.get("epsilon") or {}).get(kind))
            ax.plot(sizes, eps, _KIND_STYLE.get(kind, "-"), color=color, linewidth=1.4,
                    label=f"{pruner}: {kind} epsilon")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted({r["size"] for r in recs})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_locator(_null_locator())
    ax.set_xlabel("neurons kept (size)")
    ax.set_ylabel("max_i |F_i - F~_i| / T_i")
    ax.set_title(f"Layer {layer}: error against size (delta = {delta:g})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.set_size_inches(10.0, 4.8)
    fig.savefig(path, dpi=110)
