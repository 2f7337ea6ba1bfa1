"""The synth catalogue file (fcdist/data/synth_catalogue.yaml): it loads, its parts fit together, and a
malformed copy is refused with one line naming the file and the key. Structure, not bytes: editing the
catalogue is allowed to change rows (test_synth.py checks what rows must look like)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from fcdist import cli
from fcdist.data import synth_catalogue
from fcdist.data.synth import fill, function_catalogue
from fcdist.data.synth_catalogue import CATALOGUE_FILE, TYPES, CatalogueError, catalogue, load_catalogue
from fcdist.data.synth_mentions import COORDINATE_PAIRS, MENTIONS

SAMPLES = 200  # draws per kind
ITEM_TYPES = {"List[int]": int, "List[str]": str, "List[float]": float}
# the slots each template group is filled with (fcdist.data.synth's single_query, parallel_query, multi_call_query)
SLOTS = {"single": ("action", "noun", "args"), "noun": ("action", "noun", "args"),
         "parallel": ("action", "noun", "groups", "first", "rest", "shared"),
         "multi_call": ("clauses", "sequence", "semicolons")}


def has_type(value, type_name: str) -> bool:
    if type_name in ITEM_TYPES:
        return isinstance(value, list) and bool(value) and all(type(v) is ITEM_TYPES[type_name] for v in value)
    python = {"str": str, "int": int, "float": float, "bool": bool, "Dict[str, Any]": dict}[type_name]
    return type(value) is python and (python is not dict or (bool(value) and all(isinstance(k, str) for k in value)))


def test_every_kind_samples_values_of_its_declared_type():
    rng = random.Random(0)
    kinds = catalogue().kinds
    assert len(kinds) >= 100
    for role, kind in kinds.items():
        assert kind.type_name in TYPES and kind.descriptions and kind.phrases, role
        values = [kind.sample(rng) for _ in range(SAMPLES)]
        assert all(has_type(v, kind.type_name) for v in values), (role, values[:5])
        assert kind.default in ("", None) or has_type(kind.default, kind.type_name), role
        assert all(p.format(v=values[0]) for p in kind.phrases), role  # "{v}" is the only slot


def test_domains_utilities_mentions_and_templates_name_what_exists():
    cat = catalogue()
    for domain in cat.domains:
        assert set(domain.verbs) <= set(cat.verbs), domain.name
        roles = [r for o in domain.objects for r in (*o.required, *o.optional)] + [r for lk in domain.lookups for r in lk.required]
        assert set(roles) <= set(cat.kinds), domain.name
    for utility in cat.utilities:
        assert set(utility.required + utility.optional) <= set(cat.kinds), utility.name
    assert set(MENTIONS) <= set(cat.kinds)  # synth_mentions keys its mappings by kind role
    assert {role for pair in COORDINATE_PAIRS for role in pair[:2]} <= set(cat.kinds)
    for group, templates in cat.templates.items():
        slots = {slot: slot for slot in SLOTS[group]}
        assert all(fill(template, **slots) for template in templates), group  # no slot the code does not fill
    functions = function_catalogue()
    assert len(functions) >= 300 and {f.domain for f in functions} == {d.name for d in cat.domains} | {"utility"}
    assert all(p.role in cat.kinds for f in functions for p in f.params)


# (what to change in the shipped data, the key the message names, what it says)
BREAKAGES = [
    (lambda d: d["kinds"]["city"].update(sample=["choise", "cities"]), "kinds.city.sample", "SAMPLER one of"),
    (lambda d: d["kinds"]["city"].update(sample=["choice", "citys"]), "kinds.city.sample[1]", "no pool named 'citys'"),
    (lambda d: d["kinds"]["days"].update(sample=["ints", 1]), "kinds.days.sample", "ints takes arguments"),
    (lambda d: d["kinds"]["days"].update(sample=["ints", 1, "14"]), "kinds.days.sample[2]", "expected an integer"),
    (lambda d: d["kinds"]["days"].update(sample=["ints", 14, 1]), "kinds.days.sample", "cannot draw a value"),
    (lambda d: d["kinds"]["words"].update(sample=["distinct", ["a", "b"], 2, 5]), "kinds.words.sample", "cannot draw a value"),
    (lambda d: d["kinds"]["city"].pop("type"), "kinds.city", "missing type"),
    (lambda d: d["kinds"]["city"].update(defualt="x"), "kinds.city", "unknown key defualt"),
    (lambda d: d["kinds"]["city"].update(type="string"), "kinds.city.type", "'string' is not one of"),
    (lambda d: d["pools"]["country_codes"].append(False), "pools.country_codes[28]", "quote it"),
    (lambda d: d["domains"]["weather"]["objects"]["uv_index"].update(optional=["dayz"]),
     "domains.weather.objects.uv_index.optional", "'dayz' is not a kind"),
    (lambda d: d["domains"]["weather"].update(verbs=["grab"]), "domains.weather.verbs", "'grab' is not one of the verbs"),
    (lambda d: d["utilities"]["calculate_bmi"].update(required=["weight"]), "utilities.calculate_bmi.required", "not a kind"),
    (lambda d: d.pop("templates"), "top level", "missing templates"),
    (lambda d: d["templates"].update(single=[]), "templates.single", "non-empty list of strings"),
]


@pytest.mark.parametrize("breakage, key, says", BREAKAGES, ids=[b[1] + ":" + b[2] for b in BREAKAGES])
def test_a_malformed_catalogue_is_named_by_file_and_key(breakage, key, says, tmp_path: Path):
    data = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    breakage(data)
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(CatalogueError) as error:
        load_catalogue(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key}: ") and says in message and "\n" not in message


@pytest.mark.parametrize("edit, says", [
    (lambda text: text.replace("\n  country:\n", "\n  city:\n", 1), "key 'city' appears twice"),  # YAML would keep the last
    (lambda text: text.replace("\npools:", "\npools: [", 1), "not valid YAML"),
])
def test_a_repeated_key_or_broken_yaml_is_refused(edit, says, tmp_path: Path):
    path = tmp_path / "catalogue.yaml"
    path.write_text(edit(CATALOGUE_FILE.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(CatalogueError, match=says) as error:
        load_catalogue(path)
    assert str(error.value).startswith(f"{path}: ")


@pytest.fixture
def broken_shipped_catalogue(tmp_path: Path, monkeypatch):
    """The shipped catalogue's path pointed at a file whose pool holds an unquoted NO (YAML's False)."""
    path = tmp_path / "synth_catalogue.yaml"
    path.write_text(CATALOGUE_FILE.read_text(encoding="utf-8").replace('"NO"', "NO"), encoding="utf-8")
    monkeypatch.setattr(synth_catalogue, "CATALOGUE_FILE", path)
    catalogue.cache_clear()
    function_catalogue.cache_clear()
    yield path
    catalogue.cache_clear()  # the next test reads the shipped file again
    function_catalogue.cache_clear()


def test_fcdist_synth_reports_a_broken_catalogue_in_one_line(broken_shipped_catalogue: Path, tmp_path: Path, capsys):
    code = cli.main(["synth", "--out", str(tmp_path / "rows.jsonl"), "--rows", "5"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{broken_shipped_catalogue}: pools.country_codes[15]: expected a non-empty string; got False" in err
    assert not (tmp_path / "rows.jsonl").exists()

