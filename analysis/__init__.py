"""From run records to what the report shows: ``runs`` (load_runs into pandas), the figures, tables and macros.

Reads records, never trains. ``python -m analysis.figures --runs=results/runs --out=figures`` draws everything.
"""
