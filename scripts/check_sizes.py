"""Size limits of the source tree (run by `make lint`).

* no file under src/ longer than 450 lines;
* no function body longer than 80 lines (docstring not counted); a pipeline's ``__call__`` with
  numbered steps may reach 110.

Prints one line per violation and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80
#: (file name, function name) → a larger limit.
EXCEPTIONS = {("pipeline_cfld.py", "__call__"): 110}


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        body = body[1:]  # the docstring does not count
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def check(root: Path) -> list[str]:
    """Violations under ``root`` as ``path:line: message`` lines."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MAX_FILE_LINES:
            problems.append(f"{path}:1: {n} lines (limit {MAX_FILE_LINES})")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                limit = EXCEPTIONS.get((path.name, node.name), MAX_FUNCTION_LINES)
                lines = _body_lines(node)
                if lines > limit:
                    problems.append(f"{path}:{node.lineno}: function {node.name} has a "
                                    f"{lines}-line body (limit {limit})")
    return problems


def main(argv: list[str] | None = None) -> int:
    roots = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or [Path("src")]
    problems = [p for root in roots for p in check(root)]
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
