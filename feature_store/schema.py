"""The contract's vocabulary: what a dataset holds (:class:`Schema`) and what a method reads (:class:`Inputs`).

A schema carries names, sizes and roles, never values: it is what every method
may know about the columns before it reads a split. Both types sit at the
bottom of the feature store's data path so that the method contract
(``leadrank_api``) can speak about inputs without importing how they are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT_USES = ("none", "prompt", "h_text")  # how a method reads the text columns


@dataclass(frozen=True)
class Inputs:
    """What one method reads of a dataset: recorded in every result as ``info["inputs"]``.

    ``columns``: the non-text dataset columns read (tabular features; the funnel rule's time
    stand-in), kept sorted so two records compare as sets; ``stage``: whether the current funnel
    stage is read; ``text``: how the text columns are read — ``prompt`` (the raw text, as an LLM
    prompt does), ``h_text`` (its embedding) or ``none``."""

    columns: tuple[str, ...] = ()
    stage: bool = False
    text: str = "none"

    def __post_init__(self) -> None:
        if self.text not in TEXT_USES:
            raise ValueError(f"Inputs.text must be one of {TEXT_USES}, got {self.text!r}")
        object.__setattr__(self, "columns", tuple(sorted(set(self.columns))))

    def to_dict(self) -> dict:
        return {"columns": list(self.columns), "stage": self.stage, "text": self.text}


@dataclass(frozen=True)
class Schema:
    """What a model may know about the columns (names, sizes, roles); no values.

    It declares the dataset's *input view* — what is observable at the scoring moment — in one
    place (:attr:`tabular`, :meth:`view`, :attr:`observable`), so every method family reads all
    of it that it can use: the tabular features, the current stage where the data has one, and
    the text. No feature is derived from the scoring time: a spec lists any it has (days since the
    last activity, ...) as numeric features, so they are tabular. The raw scoring time is
    observable but read only by the funnel rule, as its recency stand-in: under a temporal split
    every test time lies past the train range, so a learned model could only extrapolate it.
    """

    dataset: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]  # encoded numeric columns, missing-value flags included
    text: tuple[str, ...]
    cardinalities: dict[str, int]
    stage_order: tuple[str, ...]
    final_stage_order: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    numeric_raw: tuple[str, ...] | None = None  # the dataset's numeric columns (None: ``numeric`` has no flags)
    time_column: str | None = None  # the scoring-time column, where the data has one

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """The numeric feature columns (``numeric`` adds missing-value flags, which read the same columns)."""
        return self.numeric if self.numeric_raw is None else self.numeric_raw

    @property
    def tabular(self) -> tuple[str, ...]:
        """The table part of the view: every categorical and numeric feature column."""
        return self.categorical + self.numeric_columns

    @property
    def observable(self) -> tuple[str, ...]:
        """Every non-text column a method may read: the tabular features and the scoring time."""
        return self.tabular + ((self.time_column,) if self.time_column else ())

    def view(self, text: str = "none") -> Inputs:
        """The view as a family reads it: every tabular column and the current stage (where the data
        has one) for a table-only model; with ``text`` (``prompt`` or ``h_text``) a text reader's."""
        return Inputs(self.tabular, self.has_stage, text if self.has_text else "none")

    @property
    def table_categorical(self) -> tuple[tuple[str, int], ...]:
        """(name, number of codes) of each column of :meth:`Split.codes`."""
        stage = (("stage", len(self.stage_order) + 1),) if self.has_stage else ()
        return tuple((c, self.cardinalities[c]) for c in self.categorical) + stage

    @property
    def has_text(self) -> bool:
        return bool(self.text)

    @property
    def has_stage(self) -> bool:
        return bool(self.stage_order)
