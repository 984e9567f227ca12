"""HerdDB's vector SQL on the local PostgreSQL: what LangStream's JDBC examples write.

LangStream's chatbot examples ran on HerdDB and say so in their SQL: tables with a ``FLOATA``
column (an array of floats) and searches ordered by ``cosine_similarity(column, CAST(? as FLOAT
ARRAY))``. ``FLOAT ARRAY`` is standard SQL that PostgreSQL reads as ``double precision[]``; the
other two are made here, in ``template1`` and the server's database, so that SQL runs unchanged:

- the domain ``floata`` over ``real[]`` (HerdDB's FLOATA holds 32-bit floats);
- the function ``cosine_similarity(double precision[], double precision[])``, the cosine of the
  two arrays by pgvector (``1 - (a::vector <=> b::vector)``): 1 for the same direction, 0 for
  orthogonal ones; arrays of different lengths fail as pgvector fails on them. A ``real[]``
  (a ``floata`` column) is cast to ``double precision[]`` implicitly.

Both are made only where they are missing, so a database of your own keeps its definitions.
"""

from __future__ import annotations

__all__ = ["HERDDB_STATEMENTS"]

HERDDB_STATEMENTS = (
    """
    DO $$ BEGIN
        IF to_regtype('public.floata') IS NULL THEN
            CREATE DOMAIN public.floata AS real[];
        END IF;
    END $$
    """,
    """
    DO $$ BEGIN
        IF to_regprocedure(
            'public.cosine_similarity(double precision[], double precision[])'
        ) IS NULL THEN
            CREATE FUNCTION public.cosine_similarity(double precision[], double precision[])
            RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            AS 'SELECT 1 - ($1::public.vector OPERATOR(public.<=>) $2::public.vector)';
        END IF;
    END $$
    """,
)
"""Statements that make ``floata`` and ``cosine_similarity`` where they are missing."""
