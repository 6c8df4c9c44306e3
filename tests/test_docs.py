"""Every ```python block of every docs/*.md page runs, so the documentation stays true.

The blocks of one page run in order in one namespace, in a temporary working directory (a
block that writes a file writes it there). Two markers, each an HTML comment alone on the line
right before a fence:

* ``<!-- skip: reason -->`` before a python block: the block is shown, not run (for an excerpt
  of fnx's own source, say). Use it sparingly; the reason is part of the marker.
* ``<!-- output -->`` before a non-python block: the block is what the python block above it
  printed. Each part of it between lines holding only ``...`` must appear in that output, in
  order, so a printed IR or a generated kernel shown on the page cannot go stale.

This is the one runner of the docs' blocks: a page's own tests check other things.
"""

import contextlib
import io
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
_SKIP = re.compile(r"<!-- skip: \S.* -->")


def _blocks(text):
    """``(language, code, marker, line number)`` for each fenced block; the marker is the
    line right before the fence when it is an HTML comment, else ''."""
    out = []
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = before if before.startswith("<!--") else ""
        out.append((m.group(1), m.group(2), marker, text.count("\n", 0, m.start()) + 1))
    return out


def _check_output(expected, printed, where):
    parts = re.split(r"^\.\.\.\n", expected, flags=re.M)
    pos = 0
    for part in parts:
        found = printed.find(part, pos)
        assert found >= 0, (f"{where}: the output shown on the page is not what the block "
                            f"above prints now.\nShown:\n{part}\nPrinted:\n{printed}")
        pos = found + len(part)


def test_every_page_has_its_blocks_found():
    # the pages with examples: a change of fence style must not make the runner skip them
    counts = {p.name: sum(lang == "python" for lang, *_ in _blocks(p.read_text()))
              for p in PAGES}
    for name in ("transforms.md", "jit.md", "nn.md", "data.md", "training.md"):
        assert counts.get(name, 0) >= 5, counts


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_doc_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": f"docs.{page.stem}"}
    printed = None
    for lang, code, marker, line in _blocks(page.read_text()):
        where = f"docs/{page.name}:{line}"
        if lang == "python":
            if marker:
                assert _SKIP.fullmatch(marker), (
                    f"{where}: a python block may only be marked <!-- skip: reason -->, "
                    f"got {marker}")
                printed = None
                continue
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    # the line offset makes tracebacks name the page's own line numbers
                    exec(compile("\n" * line + code, f"docs/{page.name}", "exec"), ns)  # noqa: S102
            except Exception as err:
                raise AssertionError(f"{where}: the python block failed:\n{code}") from err
            printed = out.getvalue()
        elif marker == "<!-- output -->":
            assert printed is not None, f"{where}: <!-- output --> follows no python block that ran"
            _check_output(code, printed, where)
