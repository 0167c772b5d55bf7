"""Compile report.tex into report.pdf with latexmk, and fail on what a reader would trip over.

    python -m analysis.build_report                  # after `python -m analysis.figures` (make report does both)
    python -m analysis.build_report --student_id=12345678 --outdir=/tmp/x   # the number on the title page

Fails (exit 2, one line) when TeX is missing (naming the Debian packages to install), on LaTeX errors, undefined
references or citations, missing figures, a \\result{...} that the figures step did not generate, or a
\\claim{key}{...} with no check in analysis/claims.py. On the CPU profile's records (claims.json says ``strict``) a
claim the runs do not support fails the build, one line per claim (its key, the sentence, the numbers); on any other
records the PDF marks it in the margin and the build lists it at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.cli import UsageError, arg, parse_args, run_main

TEX_PACKAGES = "latexmk texlive-latex-recommended texlive-fonts-recommended"


def missing_tex() -> str | None:
    """None when TeX can build the report (latexmk and pdflatex on PATH), else one line saying what to install."""
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        return f"TeX is not installed; on Debian/Ubuntu: sudo apt-get install {TEX_PACKAGES}"
    return None


ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = [
    (re.compile(r"^! (.*)$", re.M), "LaTeX error"),
    (re.compile(r"^\S+\.tex:\d+: (.*)$", re.M), "LaTeX error"),  # the -file-line-error form
    (re.compile(r"LaTeX Warning: (Reference|Citation) `([^']*)' .*undefined", re.M), "undefined reference"),
    (re.compile(r"File `([^']*)' not found", re.M), "missing figure"),
    (re.compile(r"No generated result named (\S+)", re.M), "result not generated"),
    (re.compile(r"No check for claim (\S+)", re.M), "claim without a check"),
]


@dataclass
class Args:
    tex: str = arg("report.tex", "the LaTeX source, relative to the repository root")
    figures: str = arg("figures", "folder with the generated figures, tables and results.tex")
    outdir: str = arg(".", "folder for report.pdf and LaTeX's auxiliary files")
    student_id: str = arg("", "student number for the title page (empty: a blank line to fill in)")


def problems_in(log: str) -> list[str]:
    found = []
    for pattern, kind in PROBLEMS:
        for match in pattern.finditer(log):
            found.append(f"{kind}: {match.group(match.lastindex or 0)}")
    return found


def claim_sentences(tex: str) -> dict[str, list[str]]:
    """Every ``\\claim{key}{sentence}`` of a LaTeX source, outside comments: key -> its sentences (braces balanced)."""
    text = re.sub(r"(?<!\\)%.*", "", tex)
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"\\claim\{([^}]*)\}\{", text):
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        sentence = " ".join(text[match.end():end - 1].split())
        found.setdefault(match.group(1), []).append(sentence)
    return found


def false_claims(tex: str, figures: Path) -> tuple[list[str], bool]:
    """Lines naming each claim of ``tex`` that the runs behind ``figures`` do not support, and whether those runs
    are the CPU profile's (where such a claim is an error). UsageError for a claim with no check."""
    path = figures / "claims.json"
    if not path.exists():
        raise UsageError(f"{path} is missing; run `make figures` first")
    verdicts = json.loads(path.read_text())
    sentences = claim_sentences(tex)
    if unchecked := sorted(set(sentences) - set(verdicts["claims"])):
        raise UsageError(f"claim(s) {', '.join(unchecked)} in report.tex have no check in analysis/claims.py: add "
                         "one (@claim(key)) or rerun `make figures`")
    lines = [f"claim {key} is not supported by these runs: \"{sentence}\" ({verdicts['claims'][key]['numbers']})"
             for key, said in sentences.items() if not verdicts["claims"][key]["holds"] for sentence in said]
    return lines, bool(verdicts["strict"])


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(Args, argv, description=__doc__.split("\n")[0])
    if problem := missing_tex():
        raise UsageError(problem)
    if not (Path(args.figures) / "results.tex").exists():
        raise UsageError(f"{args.figures}/results.tex is missing; run `make figures` first")
    tex = ROOT / args.tex
    figures = Path(args.figures).resolve()
    unsupported, strict = false_claims(tex.read_text(), figures)
    if unsupported and strict:  # report.tex's sentences were written for these runs: they must hold
        raise UsageError("\n".join(unsupported) + "\n(the CPU profile's records: correct the sentence in report.tex "
                         "or the check in analysis/claims.py)")
    # The report reads \figdir; pointing it at --figures lets a build use any folder of generated figures.
    outdir = Path(args.outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    if args.student_id and not re.fullmatch(r"[A-Za-z0-9_-]+", args.student_id):
        raise UsageError(f"--student_id={args.student_id}: use letters, digits, _ or - only")
    pretex = f"\\def\\figdir{{{figures}/}}" + (f"\\def\\studentid{{{args.student_id}}}" if args.student_id else "")
    # -g: latexmk cannot see the pretex change (another --figures folder, a student number), so always rebuild.
    command = ["latexmk", "-pdf", "-g", "-interaction=nonstopmode",
               "-halt-on-error", "-file-line-error", f"-outdir={outdir}", f"-usepretex={pretex}", tex.name]
    result = subprocess.run(command, cwd=tex.parent, capture_output=True, text=True)
    log_path = outdir / tex.with_suffix(".log").name
    log = log_path.read_text(errors="replace") if log_path.exists() else result.stdout
    issues = problems_in(log)
    if result.returncode != 0 or issues:
        unique = list(dict.fromkeys(issues))
        detail = "; ".join(unique[:3]) + (f"; and {len(unique) - 3} more" if len(unique) > 3 else "")
        detail = detail or (result.stdout + result.stderr).strip().splitlines()[-1]
        raise UsageError(f"{args.tex} did not compile cleanly: {detail} (see {log_path})")
    pdf = outdir / tex.with_suffix(".pdf").name
    print(f"compiled {pdf}", file=sys.stderr)
    if unsupported:
        print(f"{len(unsupported)} claim(s) not supported by these runs, marked in the margin:", *unsupported,
              sep="\n", file=sys.stderr)
    return pdf


if __name__ == "__main__":
    run_main(main)
