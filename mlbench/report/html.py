"""The report as one self-contained HTML page: inline CSS, inline SVG, PNGs as data URIs.

The Content-Security-Policy in the page forbids every request (only inline style, inline script
and ``data:`` images are allowed), so a reference that slipped in would be blocked and logged by
the browser rather than fetched.
"""

from __future__ import annotations

import base64
import math
from html import escape
from typing import Any, Iterable, Sequence

import pandas as pd

from mlbench.results.griddir import COMPARISON
from mlbench.results.leaderboard import GLOBAL_LABEL, METRICS
from mlbench.results.metrics import BRIER, ECE, ECE_BINS, lower_is_better
from mlbench.report import svg
from mlbench.report.build import GridReport, Measure, Reliability, RunReport
from mlbench.results.stats import GROUP_NAMES

DIGITS = 4  # every number from leaderboard.parquet is shown with this many decimals
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
# In the head of every page, early: `mlbench report --out` replaces an existing file only when it
# finds this (a file of someone else's is replaced only with --force).
MARKER = '<meta name="generator" content="mlbench report">'
MARKER_WITHIN = 512  # bytes from the start of the file where the marker must be
METRIC_NAMES = {"auc": "ROC AUC", "auprc": "AUPRC", "f1": "F1", "f1_pos": "F1 pos.", "hamming": "Hamming ↓",
                ECE: f"ECE ({ECE_BINS} bins) ↓", BRIER: "Brier ↓"}

CSS = """
:root { --fg:#1b1b1b; --muted:#555; --line:#d0d0d0; --accent:#0072B2; --warn:#D55E00; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 0 24px 48px; max-width: 1180px; }
h1 { font-size: 1.5em; margin: 18px 0 4px; } h2 { font-size: 1.2em; margin: 30px 0 8px;
     border-bottom: 2px solid var(--accent); padding-bottom: 3px; } h3 { font-size: 1.02em; margin: 18px 0 6px; }
.sub { color: var(--muted); margin: 0 0 10px; }
.banner { background: var(--warn); color: #fff; font-weight: 700; font-size: 1.25em; padding: 12px 16px;
          margin: 12px 0; border: 3px solid #000; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
.note { background: #fff6e0; border-left: 4px solid #E69F00; padding: 6px 10px; margin: 8px 0; }
.headline { font-size: 1.15em; margin: 8px 0 12px; } .headline b { font-size: 1.25em; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef3f8; position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " ▲"; } table.sortable th[data-dir="desc"]::after { content: " ▼"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.ci { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; white-space: nowrap; }
.wrap { overflow-x: auto; max-width: 100%; }
.scroll { max-height: 480px; overflow: auto; }
input.filter { font: inherit; padding: 3px 6px; margin: 4px 0; width: 280px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; font-size: 13px; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
svg.plot { max-width: 100%; height: auto; display: block; margin: 6px 0; }
.plots { display: flex; flex-wrap: wrap; gap: 8px 24px; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; } figure img { width: 220px; height: auto; border: 1px solid var(--line); }
figure.wide img { width: 460px; } figure.wide figcaption { max-width: 460px; }
figcaption { font-size: 12px; color: var(--muted); max-width: 220px; }
figure.reliability figcaption { max-width: 286px; }
.image-block { border: 1px solid var(--line); padding: 8px; margin: 8px 0; }
details > summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  input.filter, details > summary::marker { display: none; }
  th { position: static; } .scroll { max-height: none; overflow: visible; }
  section, figure, svg.plot, .image-block { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""

# Sorting by a column (numbers by data-value, else text), filtering by text, and opening every
# <details> before printing (closed ones would print empty).
JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-value');
    if (v !== null && v !== '' && !isNaN(Number(v))) return [0, Number(v)];
    if (v === '') return [2, 0];
    return [1, cell.textContent.trim().toLowerCase()];
  }
  function compare(a, b) { return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0); }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th, i) {
      th.tabIndex = 0;
      function sort() {
        var desc = th.getAttribute('data-dir') === 'asc';
        table.querySelectorAll('thead th').forEach(function (o) { o.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', desc ? 'desc' : 'asc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r, s) {
          var c = compare(key(r.cells[i]), key(s.cells[i]));
          return desc ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
    });
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    var table = document.getElementById(input.getAttribute('data-table'));
    input.addEventListener('input', function () {
      var q = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.style.display = !q || r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
      });
    });
  });
  window.addEventListener('beforeprint', function () {
    document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  });
})();
"""


# -- small pieces ----------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = DIGITS) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class Cell:
    """A table cell: its text, an optional sort/exact value and a class."""

    def __init__(self, text: str, value: Any = None, cls: str = "") -> None:
        self.text, self.value, self.cls = text, value, cls

    def html(self) -> str:
        value = "" if self.value is None else f' data-value="{escape(str(self.value))}"'
        cls = f' class="{self.cls}"' if self.cls else ""
        return f"<td{cls}{value}>{escape(self.text)}</td>"


def num(value: float | None, digits: int = DIGITS) -> Cell:
    """A number as shown (fixed decimals) with its exact value in ``data-value`` (repr: round-trips)."""
    ok = value is not None and math.isfinite(value)
    return Cell(fmt(value, digits), repr(float(value)) if ok else "", "num")


def count(value: int | None) -> Cell:
    return Cell("–" if value is None else str(int(value)), "" if value is None else int(value), "num")


def ci(low: float, high: float) -> Cell:
    ok = math.isfinite(low) and math.isfinite(high)
    return Cell(f"[{fmt(low)}, {fmt(high)}]" if ok else "–", repr(float(low)) if ok else "", "ci")


def table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[Cell | str]], *, filterable: bool = False,
          scroll: bool = False, numeric: Sequence[int] = ()) -> str:
    head = "".join(f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(c.html() if isinstance(c, Cell) else Cell(str(c)).html() for c in row) + "</tr>"
                   for row in rows)
    out = (f'<table id="{escape(table_id)}" class="sortable"><thead><tr>{head}</tr></thead>'
           f"<tbody>{body}</tbody></table>")
    out = f'<div class="{"wrap scroll" if scroll else "wrap"}">{out}</div>'
    if filterable:
        out = (f'<input class="filter" type="search" placeholder="filter rows…" data-table="{escape(table_id)}" '
               f'aria-label="filter table">' + out)
    return out


def kv(pairs: Iterable[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs) + "</dl>"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page(title: str, body: str, banner: str | None) -> str:
    warn = f'<div class="banner" role="alert">{escape(banner)}</div>' if banner else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'{MARKER}<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"{warn}{body}<script>{JS}</script></body></html>\n")


# -- a run -----------------------------------------------------------------------------------------
def headline_entry(report: RunReport) -> str:
    """``ctp`` when the run has it (the paper's best ensemble), else the best macro AUC."""
    names = [e for e, _ in report.entries]
    if "ctp" in names:
        return "ctp"
    scored = [(report.global_table[e]["auc"].value, e) for e in names if math.isfinite(report.global_table[e]["auc"].value)]
    return max(scored)[1] if scored else names[0]


def render_run(report: RunReport) -> str:
    banner = None
    if report.synthetic:
        banner = (f"SYNTHETIC DATA — dataset kind '{report.dataset_kind}': this run used the generated demo corpus. "
                  "Its numbers exercise the pipeline and say nothing about real images.")
    parts = [f"<h1>{escape(report.title)}</h1>",
             f'<p class="sub">mlbench run report · dataset kind <b>{escape(report.dataset_kind)}</b></p>']
    if report.notes:
        parts.append('<div class="note" id="notes" role="note"><b>Left out of this page:</b>'
                     + "".join(f"<p>{escape(n)}</p>" for n in report.notes) + "</div>")
    parts.append(_global_section(report))
    parts.append(_per_label_section(report))
    parts.append(_external_section(report))
    parts.append(_calibration_section(report))
    parts.append(_prevalence_section(report))
    parts.append(_imbalance_section(report))
    parts.append(_training_section(report))
    parts.append(_explain_section(report))
    parts.append(_provenance_section(report))
    parts.append(_skips_section(report))
    parts.append("<footer>Written by <code>mlbench report</code>. Every number comes from the run directory's "
                 "files (leaderboard.parquet, manifest.json, split.parquet, backbones/*/history.json, explain "
                 f"output); leaderboard values are shown with {DIGITS} decimals.</footer>")
    return page(("[SYNTHETIC] " if report.synthetic else "") + report.title, "".join(parts), banner)


def _global_section(report: RunReport) -> str:
    top = headline_entry(report)
    auc = report.global_table[top]["auc"]
    out = ['<section id="global"><h2>Results on the test split</h2>',
           f'<p class="headline" id="headline">{escape(top)} macro ROC AUC <b data-value="{repr(auc.value)}">'
           f"{fmt(auc.value)}</b> (95% CI {fmt(auc.ci_low)} – {fmt(auc.ci_high)})</p>"]
    headers = ["entry", "kind"]
    for metric in METRICS:
        headers += [METRIC_NAMES[metric], "95% CI"]
    rows = []
    for entry, kind in report.entries:
        row: list[Cell | str] = [Cell(entry), Cell(kind)]
        for metric in METRICS:
            m = report.global_table[entry][metric]
            row += [num(m.value), ci(m.ci_low, m.ci_high)]
        rows.append(row)
    out.append(table("global-table", headers, rows, numeric=range(2, len(headers), 2)))
    out.append('<p class="sub">Macro over labels (the leaderboard\'s <code>__global__</code> rows); 95% CIs: '
               "patient-level bootstrap. F1: binary macro F1 at threshold 0.5 (the paper's); F1 pos.: positive-class F1; "
               f"ECE: expected calibration error over {ECE_BINS} equal-mass bins of each label's test scores; Brier: "
               "mean squared difference of probability and label. Hamming loss, ECE and Brier (↓): lower is "
               "better.</p>")
    if any(report.groups[e][g] for e, _ in report.entries for g in GROUP_NAMES):
        headers = ["entry"] + [f"{g} ({report.group_members.get(g, '?')} labels) AUC" for g in GROUP_NAMES] + [
            "95% CI " + g for g in GROUP_NAMES]
        rows = []
        for entry, _ in report.entries:
            ms = [report.groups[entry][g].get("auc", Measure(float("nan"), float("nan"), float("nan")))
                  for g in GROUP_NAMES]
            rows.append([Cell(entry)] + [num(m.value) for m in ms] + [ci(m.ci_low, m.ci_high) for m in ms])
        out.append("<h3>Macro AUC by label frequency group</h3>")
        out.append(table("group-table", headers, rows, numeric=range(1, 4)))
        out.append('<p class="sub">Labels ordered by training positives and cut into thirds '
                   "(<code>__group_frequent__</code> etc.).</p>")
        out.append(_group_calibration_table(report))
    out.append("</section>")
    return "".join(out)


def _group_calibration_table(report: RunReport) -> str:
    """ECE and Brier with their CIs per entry and frequency group (the leaderboard's group rows)."""
    headers = ["entry"]
    for g in GROUP_NAMES:
        headers += [f"{g} {METRIC_NAMES[ECE]}", "95% CI", f"{g} {METRIC_NAMES[BRIER]}", "95% CI"]
    missing = Measure(float("nan"), float("nan"), float("nan"))
    rows = []
    for entry, _ in report.entries:
        row: list[Cell | str] = [Cell(entry)]
        for g in GROUP_NAMES:
            for metric in (ECE, BRIER):
                m = report.groups[entry][g].get(metric, missing)
                row += [num(m.value), ci(m.ci_low, m.ci_high)]
        rows.append(row)
    return ("<h3>Calibration by label frequency group</h3>"
            + table("group-calibration-table", headers, rows, numeric=range(1, len(headers), 2))
            + '<p class="sub">Means over the group\'s labels of each label\'s ECE and Brier score; lower is better. '
            "A run written before mlbench measured calibration has none (–).</p>")


def _calibration_section(report: RunReport) -> str:
    """One reliability diagram per entry and frequency group: the headline entry open, the others folded."""
    out = ['<section id="calibration"><h2>Calibration: reliability diagrams by label frequency group</h2>']
    if not report.reliability:
        out.append("<p>No reliability diagrams: they need the run's split.parquet and predictions.parquet (see the "
                   "note at the top).</p></section>")
        return "".join(out)
    out.append(f'<p class="sub">Each diagram pools the (test image, label) cells of the group\'s labels, cuts '
               f"their scores into {ECE_BINS} equal-mass bins and plots each bin's observed positive rate against its "
               "mean predicted probability; on the dashed diagonal the scores are calibrated. Below the diagonal the "
               "entry overestimates the probability. The caption gives the group's ECE (mean over its labels, as "
               "in the tables) and the ECE of the pooled bins drawn.</p>")
    top = headline_entry(report)
    order = [top] + [e for e, _ in report.entries if e != top and e in report.reliability]
    for i, entry in enumerate(e for e in order if e in report.reliability):
        figures = "".join(_reliability_figure(entry, d) for d in report.reliability[entry])
        block = f'<div class="plots" id="reliability-{escape(entry)}">{figures}</div>'
        out.append(block if i == 0 else f"<details><summary>{escape(entry)}</summary>{block}</details>")
    out.append("</section>")
    return "".join(out)


def _reliability_figure(entry: str, d: Reliability) -> str:
    plot = svg.reliability(d.bins, title=f"{entry} · {d.group} ({d.n_labels} labels)",
                           source="the run's test predictions and labels")
    ece = (f"ECE ({ECE_BINS} bins) {fmt(d.ece.value)}"
           + (f" (95% CI {fmt(d.ece.ci_low)} – {fmt(d.ece.ci_high)})" if math.isfinite(d.ece.ci_low) else "")
           + f", mean over the group's labels; pooled over these {d.cells} cells {fmt(d.pooled_ece)}; "
           f"Brier {fmt(d.brier.value)}")
    return (f'<figure class="reliability" id="reliability-{escape(entry)}-{escape(d.group)}">{plot}'
            f"<figcaption>{escape(ece)}</figcaption></figure>")


def _external_section(report: RunReport) -> str:
    """Internal vs external per shared label: one table per external evaluation (``mlbench evaluate``)."""
    if not report.external:
        return ""
    out = ['<section id="external"><h2>Internal vs external validation</h2>',
           '<p class="sub">The run scored on other benchmarks\' test splits for the labels both benchmarks map to '
           "the same finding of a shared vocabulary (<code>mlbench evaluate</code>); labels in this run's "
           "spelling, their truth the other benchmark's label (<i>as</i>).</p>"]
    for i, ev in enumerate(report.external):
        name = METRIC_NAMES.get(ev.metric, ev.metric)
        out.append(f'<h3 id="external-{i}">{escape(ev.scope)} · {escape(ev.entry)} · {escape(name)} · '
                   f"{ev.n_images} test images ({escape(ev.test_split)})</h3>")
        if ev.synthetic:
            out.append('<p class="sub"><b>SYNTHETIC DEMO DATA</b> on the other benchmark\'s side too: the table '
                       "exercises the method.</p>")
        headers = ["label", "as", "finding", "relation", "n pos internal", f"internal {name}", "95% CI",
                   "n pos external", f"external {name}", "95% CI", "difference", "verdict"]
        rows = [[Cell(r.label), Cell(str(r.target_label)), Cell(str(r.term)), Cell(str(r.relation)),
                 count(None if pd.isna(r.n_internal) else int(r.n_internal)), num(r.internal),
                 ci(r.internal_ci_low, r.internal_ci_high),
                 count(None if pd.isna(r.n_external) else int(r.n_external)), num(r.external),
                 ci(r.external_ci_low, r.external_ci_high), num(r.difference), Cell(str(r.verdict))]
                for r in ev.of().itertuples(index=False)]
        out.append(table(f"external-table-{i}", headers, rows, numeric=(4, 5, 7, 8, 10)))
        out.append("".join(f'<p class="sub">{escape(n)}</p>' for n in ev.notes))
        if ev.not_shared:
            out.append(f"<details><summary>{len(ev.not_shared)} labels not shared, and why</summary>"
                       + table(f"external-not-shared-{i}", ["label", "why"],
                               [[Cell(k), Cell(v)] for k, v in ev.not_shared.items()]) + "</details>")
    out.append("</section>")
    return "".join(out)


def _per_label_section(report: RunReport) -> str:
    top = headline_entry(report)
    pub = report.published
    out = ['<section id="per-label"><h2>Per-label ROC AUC, most frequent label first</h2>',
           f'<p class="sub">Labels sorted by {escape(report.frequency_basis)}; beside each label: '
           "training / test positives.</p>"]
    if pub:
        out.append('<div class="note">' + "<br>".join(escape(n) for n in pub["notes"]) + "</div>")
    order = [top] + [e for e, _ in report.entries if e != top]
    for i, entry in enumerate(order):
        rows = [{"label": r.label, "note": f"{_n(r.n_train)} / {_n(r.n_test)}", "value": r.auc.value,
                 "ci_low": r.auc.ci_low, "ci_high": r.auc.ci_high, "published": r.published}
                for r in report.per_label[entry]]
        pub_name = None
        if pub and entry in pub["references"]:
            pub_name = f"published: {pub['references'][entry]} ({pub['variant']})"
        source = "leaderboard.parquet (run rows, metric auc)" + ("; published leaderboard" if pub_name else "")
        plot = svg.forest(rows, title=f"{entry}: per-label ROC AUC with 95% CI", x_label="ROC AUC (0.5 = chance)",
                          source=source, reference=0.5, published_name=pub_name, run_name=entry)
        if i == 0:
            out.append(f'<div id="forest-{escape(entry)}">{plot}</div>')
        else:
            out.append(f"<details><summary>{escape(entry)}</summary><div id=\"forest-{escape(entry)}\">{plot}</div></details>")
    headers = ["label", "train positives", "test positives", "prevalence"] + [f"{e} AUC" for e, _ in report.entries]
    if pub:
        headers += [f"published ({e})" for e, _ in report.entries if e in pub["references"]]
    rows = []
    by_label = {e: {r.label: r for r in report.per_label[e]} for e, _ in report.entries}
    for r in report.per_label[top]:
        row: list[Cell | str] = [Cell(r.label), count(r.n_train), count(r.n_test), num(r.prevalence)]
        row += [num(by_label[e][r.label].auc.value) for e, _ in report.entries]
        if pub:
            row += [num(by_label[e][r.label].published) for e, _ in report.entries if e in pub["references"]]
        rows.append(row)
    out.append("<details><summary>Per-label table (all entries)</summary>")
    out.append(table("label-table", headers, rows, filterable=True, scroll=True, numeric=range(1, len(headers))))
    out.append("</details></section>")
    return "".join(out)


def _n(x: int | None) -> str:
    return "?" if x is None else str(x)


def _prevalence_section(report: RunReport) -> str:
    series = []
    for entry, _ in report.entries:
        rows = report.per_label[entry]
        series.append({"name": entry, "x": [r.prevalence for r in rows], "y": [r.auc.value for r in rows],
                       "labels": [r.label for r in rows]})
    if not any(math.isfinite(x) for s in series for x in s["x"]):
        return ""
    plot = svg.scatter_log_x(series, title="ROC AUC against label prevalence (log scale)",
                             x_label="label prevalence: share of all images carrying it (log scale)",
                             y_label="ROC AUC", source="leaderboard.parquet (auc) and split.parquet (prevalence)")
    return ('<section id="prevalence"><h2>Performance against label frequency</h2>' + plot +
            '<p class="sub">One point per label and entry; lines: least-squares fit of AUC on log10 prevalence '
            "(slope per tenfold increase in prevalence). Labels without a test positive have no AUC.</p></section>")


def _imbalance_section(report: RunReport) -> str:
    if not report.imbalance:
        return ('<section id="imbalance"><h2>Imbalance</h2><p>No usable split.parquet in the run directory (see the '
                'note at the top).</p></section>')
    splits = list(report.imbalance)
    rows = []
    for name in splits:
        r = report.imbalance[name]
        rows.append([Cell(name), count(r.n_instances), num(r.mean_ir, 3), num(r.max_ir, 3), num(r.cvir, 3),
                     num(r.scumble, 4), num(r.cardinality, 3), num(r.density, 4), count(len(r.absent_labels))])
    headers = ["split", "images", "MeanIR", "MaxIR", "CVIR", "SCUMBLE", "cardinality", "density", "absent labels"]
    out = ['<section id="imbalance"><h2>Imbalance of the dataset and each split</h2>',
           table("imbalance-table", headers, rows, numeric=range(1, len(headers))),
           '<p class="sub">Charte et al.\'s measures (mlbench.data.imbalance) from split.parquet: IRLbl = most '
           "frequent label's count / the label's count; MeanIR, MaxIR its mean and maximum; CVIR = sd / mean of "
           "IRLbl; SCUMBLE: concurrence of rare and frequent labels. Labels with no positive in a split are "
           "left out of its measures.</p>"]
    irl_rows = [[Cell(label)] + [num(report.imbalance[s].irlbl.get(label), 3) for s in splits]
                for label in report.labels]
    out.append("<details><summary>IRLbl per label and split</summary>")
    out.append(table("irlbl-table", ["label"] + [f"IRLbl {s}" for s in splits], irl_rows, filterable=True,
                     scroll=True, numeric=range(1, len(splits) + 1)))
    out.append("</details></section>")
    return "".join(out)


def _training_section(report: RunReport) -> str:
    if not report.histories:
        return ""
    loss = next((v for k, v in report.identity if k == "loss"), "loss")
    plots = []
    for name, h in report.histories.items():
        plots.append(svg.lines([{"name": "training loss", "x": h["epoch"], "y": h["train_loss"]},
                                {"name": "validation loss", "x": h["epoch"], "y": h["val_loss"], "dashed": True}],
                               title=f"{name}: loss per epoch", x_label="epoch (0-based)",
                               y_label=f"{loss} loss per image", source=h["source"],
                               mark_x=h["best_epoch"], mark_name=f"chosen epoch {h['best_epoch']}"))
    return ('<section id="training"><h2>Training curves</h2><div class="plots">' + "".join(plots) +
            '</div><p class="sub">The chosen epoch (dashed vertical line) has the lowest validation loss; its '
            "checkpoint made the predictions.</p></section>")


def _explain_section(report: RunReport) -> str:
    rows = report.explainer_rows
    if rows.empty and not report.galleries:
        return ""
    out = ['<section id="explain"><h2>Explanations (mlbench explain)</h2>']
    if not rows.empty:
        table_rows = [[Cell(r.entry), Cell(r.label), Cell(r.metric), num(r.value), ci(r.ci_low, r.ci_high),
                       count(None if r.n_positive != r.n_positive else int(r.n_positive))]
                      for r in rows.itertuples(index=False)]
        out.append("<h3>Heatmap scores (leaderboard cam_ rows)</h3>")
        out.append(table("cam-table", ["explainer", "label", "metric", "value", "95% CI", "findings"], table_rows,
                         filterable=True, scroll=True, numeric=(3, 5)))
    for k, g in enumerate(report.galleries):
        out.append(f"<h3>Gallery from {escape(g.folder)}</h3>")
        out.append(kv(g.settings + g.chance))
        glob = [s for s in g.scores if s.get("label") == GLOBAL_LABEL]
        if glob:
            out.append(table(f"explain-scores-{k}", ["metric", "value", "95% CI", "findings"],
                             [[Cell(s["metric"]), num(_f(s.get("value"))), ci(_f(s.get("ci_low")), _f(s.get("ci_high"))),
                               count(s.get("n_positive"))] for s in glob], numeric=(1, 3)))
        for image in g.images:
            figures = "".join(f'<figure><img alt="{escape(p.caption)}" src="{data_uri(p.png)}">'
                              f"<figcaption>{escape(p.caption)}</figcaption></figure>" for p in image.panels)
            if image.std_png:
                figures += (f'<figure class="wide"><img alt="std of the models\' maps" src="{data_uri(image.std_png)}">'
                            "<figcaption>per-pixel std of the models' maps</figcaption></figure>")
            out.append(f'<div class="image-block"><div class="sub">{escape(image.image_id)}</div>'
                       f'<div class="gallery">{figures}</div></div>')
        if g.left_out:
            out.append(f'<p class="note">{g.left_out} more explained images are in {escape(g.folder)} '
                       "(left out to keep this file small).</p>")
        if g.skipped:
            out.append(f'<p class="note">explain skipped {g.skipped} items (listed in explain.json).</p>')
    out.append("</section>")
    return "".join(out)


def _f(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) else float("nan")


def _provenance_section(report: RunReport) -> str:
    stages = [[Cell(name), num(seconds, 1), Cell(status)] for name, seconds, status in report.stages]
    out = ['<section id="provenance"><h2>Identity and provenance</h2>', kv(report.identity),
           "<h3>Stage wall times</h3>", table("stages-table", ["stage", "seconds", "status"], stages, numeric=(1,)),
           "<h3>Versions</h3>", kv(report.versions),
           "<h3>Plugins</h3>", table("plugins-table", ["plugin", "package"], [[Cell(k), Cell(v)] for k, v in report.plugins])]
    if report.metric_warnings:
        out.append(f"<details><summary>{len(report.metric_warnings)} metric warnings</summary><ul>"
                   + "".join(f"<li>{escape(w)}</li>" for w in report.metric_warnings) + "</ul></details>")
    out.append("</section>")
    return "".join(out)


def _skips_section(report: RunReport) -> str:
    rows = [[Cell(stage), Cell(reason), count(n)] for stage, reason, n in report.skips]
    body = (table("skips-table", ["stage", "reason", "items"], rows, numeric=(2,)) if rows
            else "<p>Nothing was skipped.</p>")
    return (f'<section id="skipped"><h2>Skipped: {report.skips_total} items, by reason</h2>{body}'
            '<p class="sub">Every skipped item is listed in the run directory\'s skipped.parquet.</p></section>')


# -- a grid ----------------------------------------------------------------------------------------
def render_grid(report: GridReport) -> str:
    rows = report.rows
    parts = [f"<h1>{escape(report.title)}</h1>",
             f'<p class="sub">Remedy against baseline, paired differences with 95% CIs over seeds '
             f"(from {escape(report.grid_dir)}/{COMPARISON}). helps / hurts: the CI excludes 0 and the "
             "Holm-adjusted p-value is below 0.05, the family being every remedy and name within one entry, "
             "scope and metric; the CIs themselves are per row.</p>"]
    for remedy in report.remedies:
        part = rows[rows["remedy"] == remedy]
        baselines = ", ".join(dict.fromkeys(part["baseline"].astype(str)))
        parts.append(f'<section id="remedy-{escape(remedy)}"><h2>{escape(remedy)} vs {escape(baselines)}</h2>')
        for metric in report.metrics:
            sel = part[(part["metric"] == metric) & (part["scope"] != "label")]
            if sel.empty:
                continue
            plot_rows = [{"label": f"{r.entry} · {'macro' if r.scope == 'macro' else r.name}", "note": f"{int(r.n_seeds)} seeds", "difference": r.difference,
                          "ci_low": r.ci_low, "ci_high": r.ci_high, "verdict": r.verdict}
                         for r in sel.itertuples(index=False)]
            better = "below" if lower_is_better(metric) else "above"
            parts.append(svg.differences(plot_rows, title=f"{remedy}: {METRIC_NAMES.get(metric, metric)} difference "
                                                            "by frequency group",
                                         x_label=f"{metric} (remedy − baseline; {better} 0 is better)",
                                         source=COMPARISON))
        parts.append("</section>")
    headers = ["remedy", "baseline", "entry", "scope", "name", "metric", "difference", "95% CI", "seeds",
               "p (Holm)", "verdict"]
    table_rows = [[Cell(r.remedy), Cell(str(r.baseline)), Cell(r.entry), Cell(r.scope), Cell(r.name), Cell(r.metric),
                   num(r.difference), ci(r.ci_low, r.ci_high), count(int(r.n_seeds)), num(r.p_adjusted),
                   Cell(r.verdict)]
                  for r in rows.itertuples(index=False)]
    parts.append('<section id="all-rows"><h2>All differences</h2>')
    parts.append(table("grid-table", headers, table_rows, filterable=True, scroll=True, numeric=(6, 8, 9)))
    parts.append("</section>")
    cells = [[Cell(c["remedy"]), Cell(c["backbones"]), Cell(c["seed"]), Cell(c["run_id"] or "–"),
              Cell("yes" if c["finished"] else "no"), Cell(c["path"])] for c in report.cells]
    parts.append('<section id="cells"><h2>Cells</h2>')
    parts.append(table("cells-table", ["remedy", "backbones", "seed", "run id", "finished", "folder"], cells,
                       filterable=True) if cells else "<p>No cell run directories under cells/.</p>")
    parts.append("</section><footer>Written by <code>mlbench report</code>.</footer>")
    banner = None
    if report.synthetic_kinds:
        banner = (f"SYNTHETIC DATA — cells of this grid ran on dataset kind {', '.join(report.synthetic_kinds)}: "
                  "the differences exercise the pipeline and say nothing about real images.")
    return page(("[SYNTHETIC] " if banner else "") + report.title, "".join(parts), banner)
