"""Changelists that stay fast on a platform's data (a million contracts, millions of notifications).

- ``EstimatedCountPaginator``: on PostgreSQL, a list the planner expects to hold more than ``EXACT_BELOW`` rows
  is counted from the planner's estimate (``EXPLAIN``) instead of ``COUNT(*)``, which reads every row; smaller
  lists, and every list on other databases, are counted exactly. The page links then follow the estimate.
- ``NumberSearch``: the search box looks up WeChat Pay's and our numbers **exactly**, each through an index
  (``search_numbers``: ``"field"`` on the model, or ``"relation__field"``); ``icontains`` over several
  columns reads the whole table. A search for anything that is not one of those numbers finds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest

EXACT_BELOW = 10_000  # a list the planner expects to be smaller than this is counted exactly
MAX_MATCHES = 1_000  # rows one number may match (an openid's contracts, say)


class EstimatedCountPaginator(Paginator):
    """``count`` from PostgreSQL's estimate for a large list; exact for a small one or another database."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or connections[queryset.db].vendor != "postgresql":
            return super().count
        estimate = planned_rows(queryset)
        return super().count if estimate < EXACT_BELOW else estimate


def planned_rows(queryset: QuerySet) -> int:
    """The rows PostgreSQL's planner expects ``queryset`` to give (its statistics; ANALYZE keeps them fresh)."""
    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # e.g. a search that matched nothing: pk__in=[]
        return 0
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class LargeTableAdmin(admin.ModelAdmin):
    """A changelist that neither counts the whole table nor scans it to search (see the module docstring)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False  # "N results (M total)" would count the whole table on every page
    search_numbers: tuple[str, ...] = ()  # exact, indexed lookups the search box tries, each alone

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return self.search_numbers  # shows the search box; get_search_results does the looking up

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(pk__in=self.rows_numbered(term)), False

    def rows_numbered(self, term: str) -> set[Any]:
        """The primary keys of the rows one of ``search_numbers`` equals ``term`` on: one indexed lookup each.

        Each lookup alone, never one OR across tables (PostgreSQL cannot combine an OR over a join through
        indexes, and scans instead); at most ``MAX_MATCHES`` rows each.
        """
        found: set[Any] = set()
        for path in self.search_numbers:
            found.update(self.numbered(path, term).values_list("pk", flat=True)[:MAX_MATCHES])
        return found

    def numbered(self, path: str, term: str) -> QuerySet:
        """The rows whose ``path`` is ``term``; a subclass narrows a lookup to what its index holds."""
        return self.model._default_manager.filter(**{path: term})


class ConfiguredValuesFilter(admin.SimpleListFilter):
    """A filter whose choices are the site's settings, not ``SELECT DISTINCT`` over the whole table.

    Subclasses name the ``parameter_name`` (the field) and ``values()``; a value seen in the URL but no longer
    configured is still offered, so a bookmarked filter keeps working.
    """

    def values(self) -> Sequence[Any]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        shown = [str(value) for value in sorted(self.values())]
        if self.value() and self.value() not in shown:
            shown.append(str(self.value()))
        return [(value, value) for value in shown]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset
