"""Print the "Goals and the latest results" table of bench/README.md from bench/results/*.json.

    .venv/bin/python bench/goals.py            # the table, Markdown
    .venv/bin/python bench/goals.py --write    # replace it in bench/README.md

Every figure that has a goal, with the raw baseline of the same run and the commit each
result file names (``dirty`` when it was measured with uncommitted changes).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
BEGIN = "<!-- goals:begin -->"
END = "<!-- goals:end -->"


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.1f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table() -> str:
    lines = [
        "| figure | goal | value | raw baseline (same run) | | commit |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        commit = data.get("commit", {})
        sha = f"`{str(commit.get('sha', ''))[:10]}`" + (" dirty" if commit.get("dirty") else "")
        for figure in data.get("figures", []):
            goal = figure.get("goal")
            if goal is None:
                continue
            sign = "≥" if figure.get("better") == "higher" else "≤"
            baseline = figure.get("baseline") or {}
            base = _number(baseline["value"]) if baseline.get("value") is not None else "—"
            met = "met" if figure.get("goal_met") else "**missed**"
            lines.append(
                f"| `{data['name']}/{figure['name']}` | {sign} {_number(goal)} {figure['unit']} "
                f"| {_number(figure['value'])} | {base} | {met} | {sha} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = parser.parse_args()
    text = table()
    if not args.write:
        print(text, end="")
        return
    readme = README.read_text()
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in readme:
        readme = re.sub(f"{re.escape(BEGIN)}.*?{re.escape(END)}", block, readme, flags=re.S)
    else:
        raise SystemExit(f"{README} has no {BEGIN} … {END} block")
    README.write_text(readme)


if __name__ == "__main__":
    main()
