"""One wording for numbers computed from synthetic corpora, wherever rsnet shows them: titles of
tables, figures and reports, and one-line summaries. Published numbers are never shown so."""

from __future__ import annotations

SYNTHETIC = "SYNTHETIC DATA (not the paper's numbers)"


def synthetic_title(title: str, synthetic: bool) -> str:
    """'SYNTHETIC DATA (not the paper's numbers): <title>' for synthetic results, else the title."""
    return f"{SYNTHETIC}: {title}" if synthetic else title


def synthetic_note(synthetic: bool) -> str:
    """' [SYNTHETIC DATA (not the paper's numbers)]' to end a one-line summary, or ''."""
    return f" [{SYNTHETIC}]" if synthetic else ""
