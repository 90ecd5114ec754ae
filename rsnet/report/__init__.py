"""`python -m rsnet.report results/`: the paper's tables and figures from sweep results.

load.py reads the per-trial files; aggregate.py computes per-seed cross-validated accuracy and
means over seeds; resampling.py the intervals over seeds and test videos and the paired
comparisons of ablations; tables.py and figures.py shape them as the paper's
Table 2, Table 3, Fig. 6, the cross-domain table and Fig. 7, beside the published numbers
(published.py); audit.py tells how they were obtained; write.py writes Markdown, CSV
and LaTeX for every table, PNG figures, and one index.md that shows everything together.
"""

from .write import build_report

__all__ = ["build_report"]
