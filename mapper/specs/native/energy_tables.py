"""Energy tables, and the energies of a native architecture written with their entries.

A table file: {name, unit, symbol=pJ, source, entries: {name: energy, ...}}. An
energy in an architecture is a number in the tables' unit, or a sum of a table's
entries with optional factors ("4*global_buffer + rf"), kept symbolic until the table
it names is read (`EnergyTables.energy`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, PlainValidator, WithJsonSchema

from ..errors import File, SpecError, did_you_mean
from ..fields import (NAMED_ONLY, NUMBER, Identifier, SpecModel, Text, invalid, is_number, parse_sum, sum_pattern,
                      validated)
from ..files import DocumentKind, is_file_or_special, load_yaml, shipped_specs_dir
from ..limits import MAX_ENERGY


_UNIT_SYMBOL = re.compile(r"[^\W\d_]\w{0,11}")  # short: it heads table columns and ends "<unit>*cycles"


def _table_energy(value: object) -> float:
    if not is_number(value) or not 0 <= value <= MAX_ENERGY:
        raise invalid(value, f"an energy from 0 to {MAX_ENERGY:g} (mapper/specs/limits.py)")
    return float(value)


def _unit_symbol(value: object) -> str:
    if not isinstance(value, str) or not _UNIT_SYMBOL.fullmatch(value):
        raise invalid(value, "a unit symbol: a letter, then at most 11 letters, digits or _ (pJ, nJ, MAC)")
    return value


EnergyValue = float | tuple[tuple[float, str], ...]


def _energy_value(value: object) -> EnergyValue:
    """A number of pJ, or a sum of table entries with optional factors, kept symbolic
    until the table is known."""
    allowed = (f"a number from 0 to {MAX_ENERGY:g} (in the energy table's unit, pJ without a table), or "
               'energy-table entries like "rf" or "4*global_buffer + rf"')
    if is_number(value) and 0 <= value <= MAX_ENERGY:
        return float(value)
    terms = parse_sum(value) if isinstance(value, str) else None
    if terms is None:
        raise invalid(value, allowed)
    return tuple((1.0 if c is None else float(c), name) for c, name in terms)


ENERGY_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": 0, "maximum": MAX_ENERGY},
    {"type": "string", "pattern": sum_pattern(NUMBER)},
], "description": 'pJ (or the energy table\'s unit), or entries of the energy table: "rf", "4*global_buffer + rf"'})
TableEnergy = Annotated[float, PlainValidator(_table_energy),
                       WithJsonSchema({"type": "number", "minimum": 0, "maximum": MAX_ENERGY})]
UnitSymbol = Annotated[str, PlainValidator(_unit_symbol), WithJsonSchema(
    {"type": "string", "pattern": f"^{_UNIT_SYMBOL.pattern}$",
     "description": "the unit's short name in outputs: pJ, or e.g. MAC for entries normalized to one MAC"})]
Energy = Annotated[EnergyValue, PlainValidator(_energy_value), ENERGY_SCHEMA]


class EnergyTableSpec(SpecModel):
    name: Text
    unit: Text
    symbol: UnitSymbol = "pJ"
    source: Text
    entries: Annotated[dict[Identifier, TableEnergy], Field(min_length=1, json_schema_extra=NAMED_ONLY)]


ENERGY_TABLE_DOCUMENT = DocumentKind("an energy table", tuple(EnergyTableSpec.model_fields))


def find_energy_table(name: str, spec_dir: Path) -> Path | None:
    """A table named in a spec: next to the spec first, then in the `energy/` folder
    beside the spec's folder (the layout of the shipped specs/, so that a copy of it, or
    a shipped spec named by its path from anywhere, finds its tables), then among the
    shipped ones."""
    for directory in (spec_dir, spec_dir.parent / "energy", shipped_specs_dir() / "energy"):
        for candidate in (directory / name, directory / f"{name}.yaml"):
            if is_file_or_special(candidate):
                return candidate
    return None


def load_energy_table(path: str | Path) -> dict[str, float]:
    """The entries of one energy table file, in the table's unit."""
    return dict(_read_energy_table(path).entries)


def _read_energy_table(path: str | Path) -> EnergyTableSpec:
    return validated(EnergyTableSpec.model_validate, load_yaml(path, ENERGY_TABLE_DOCUMENT), path, "")


@dataclass
class EnergyTables:
    """The tables an architecture names, each loaded once."""

    spec_dir: Path
    loaded: dict[str, EnergyTableSpec] = field(default_factory=dict)

    def entries(self, name: str, file: File, path: str) -> dict[str, float]:
        return self.table(name, file, path).entries

    def table(self, name: str, file: File, path: str) -> EnergyTableSpec:
        if name not in self.loaded:
            found = find_energy_table(name, self.spec_dir)
            if found is None:
                shipped = sorted(p.stem for p in (shipped_specs_dir() / "energy").glob("*.yaml"))
                if not shipped:  # an installed mapper run outside the repository: the tables are its files
                    raise SpecError(file, path, f"energy table {name!r}, which is neither next to the spec nor "
                                    "in ../energy/ beside it, and no specs/energy/ here",
                                    "a table file next to the spec or in ../energy/",
                                    "run from the repository's folder, or copy the table next to the spec")
                raise SpecError(file, path, f"energy table {name!r}, which is neither next to the spec, "
                                "nor in ../energy/ beside it, nor in specs/energy/",
                                "a table file name; shipped: " + ", ".join(shipped), did_you_mean(name, shipped))
            try:
                self.loaded[name] = _read_energy_table(found)
            except SpecError as error:  # the mistake is in the table; the user wrote its name here
                raise SpecError(file, path, f"energy table {name!r} in a file that does not load ({error})",
                                "a table file that loads: fix it, or name another table") from None
        return self.loaded[name]

    def unit(self, named: list[tuple[str, str]], file: File) -> str:
        """The one unit symbol of the named tables (pJ if none): a sum of energies in
        two units, say pJ and multiples of a MAC, would mean nothing."""
        units: dict[str, str] = {}  # symbol -> the first table in it
        for name, path in named:
            symbol = self.table(name, file, path).symbol
            if units and symbol not in units:
                first_symbol, first_table = next(iter(units.items()))
                raise SpecError(file, path, f"energy table {name!r}, in {symbol}",
                                f"tables in one unit: {first_table!r} is in {first_symbol}",
                                "use tables of one unit, or write this level's energies as numbers")
            units.setdefault(symbol, name)
        return next(iter(units), "pJ")

    def energy(self, value: EnergyValue, table: tuple[str, str] | None, file: File, path: str) -> float:
        """A number as written (in the architecture's unit), or the weighted sum of table
        entries for an expression."""
        if isinstance(value, float):
            return value
        if table is None:
            raise SpecError(file, path, f"table entries ({' + '.join(n for _, n in value)}) but no energy_table",
                            "a number of pJ, or entries of the energy_table set on the level or architecture")
        name, table_path = table
        entries = self.entries(name, file, table_path)
        for _, entry in value:
            if entry not in entries:
                raise SpecError(file, path, f"entry {entry!r}", f"an entry of {name}: " + ", ".join(entries),
                                did_you_mean(entry, entries))
        total = sum(coefficient * entries[entry] for coefficient, entry in value)
        if not total <= MAX_ENERGY:  # a coefficient of hundreds of digits makes inf
            raise SpecError(file, path, f"{' + '.join(f'{c:g}*{n}' for c, n in value)} = {total:g}",
                            f"an energy of at most {MAX_ENERGY:g} per access (mapper/specs/limits.py)")
        return total
