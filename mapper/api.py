"""The Python API: what the commands do, for a notebook or a batch script.

    from mapper import api
    specs = api.load("specs/arch/eyeriss-like.yaml", "specs/workloads/alexnet.yaml")
    conv3 = specs.problem("conv3")
    result = api.search(conv3, specs.architecture, out="runs/conv3", trials=60)
    mapping, ev = result.points[0]
    print(api.explain(conv3, specs.architecture, mapping).cycles.bound)
    network = api.search_network(specs, out="runs/alexnet", jobs=2)
    print(network.summary["totals"]["edp_J_cycles"])
    table = api.compare("runs/alexnet", "runs/alexnet-ws")
    chip = api.estimate(specs)               # energies, leakage and area by level
    graph = api.graph("resnet50")            # a networkx DiGraph of the layers

Every function returns the plain typed data the commands print from (Problem,
Architecture, Mapping, Evaluation, Explanation, LayerResult, NetworkResult,
ArchitectureEstimate, a networkx graph) and
writes what the command writes; none prints. Bad input raises SpecError with the
file, key path, what was found and what is allowed, as the commands report it. A
script calls them under `if __name__ == "__main__":`, as any script that starts
processes must: `search_network`'s workers are spawned, and import it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .architecture import Architecture
from .compare import comparison
from .constraints import Constraints
from .estimation import BUILT_IN, ArchitectureEstimate, EstimateError, Hardware, estimate_architecture, technology_nm
from .explain import Explanation, explain as explain_evaluation
from .mapping import Mapping
from .mapspace import Mapspace, layer_constraints
from .model.batch import batch_from_mappings
from .model.capacity import violations
from .model.stats import Evaluation
from .model.vectorized import evaluate_mapping
from .network import Layer, NetworkJob, NetworkResult, fusion_candidates, network_name, run_network, worker_pool
from .problem import Problem
from .runs import read_runs
from .search.run import LayerResult, Settings, claim_layer_folder, search_layer
from .specs.errors import SpecError, did_you_mean
from .specs.load import load_specs
from .specs.coverage import check_covers
from .specs.native import load_workload_inputs
from .workload_graph import workload_graph

__all__ = ["Loaded", "load", "evaluate", "broken_constraints", "explain", "search", "search_network", "compare",
           "estimate", "graph"]


@dataclass(frozen=True)
class Loaded:
    """What spec files give together: layers, an architecture, constraints, a mapping."""

    files: tuple[str, ...]
    problems: tuple[Problem, ...]
    architecture: Architecture | None
    constraints: Constraints | None
    mapping: Mapping | None
    hardware: Hardware = Hardware()  # what the architecture says for the estimator
    batch: int = 1  # the samples each native layer runs on (`load`)

    def problem(self, name: str) -> Problem:
        """The layer of that name (a workload's layer, or the one problem)."""
        for problem in self.problems:
            if problem.name == name or problem.name.endswith(f"/{name}"):
                return problem
        raise SpecError(", ".join(self.files), "layers", f"no layer {name!r}",
                        "one of " + ", ".join(p.name for p in self.problems))


def load(*files: str | Path, batch: int = 1, need_energies: bool = True) -> Loaded:
    """Read native or Timeloop spec files, merged as `mapper search` merges them.
    `need_energies=False`: a Timeloop architecture may come without its ERT (energies 0),
    to be estimated."""
    specs = load_specs(list(files), batch, need_energies)
    return Loaded(tuple(str(f) for f in files), specs.problems, specs.architecture, specs.constraints,
                  specs.mapping, specs.hardware, batch)


def evaluate(problem: Problem, arch: Architecture, mapping: Mapping, source: str | None = None) -> Evaluation:
    """The mapping's counts, energy and cycles (`mapper evaluate`). Raises SpecError
    for a mapping that does not fit, naming `source` (the files it came from; default:
    the layer)."""
    check_covers(mapping, problem, arch, source or problem.name)
    reasons = violations(problem, arch, mapping)
    if reasons:
        raise SpecError(source or problem.name, "mapping", "a mapping that does not fit: " + "; ".join(reasons),
                        "tiles within each level's capacity and spatial factors within each fan-out")
    return evaluate_mapping(problem, arch, mapping)


def broken_constraints(problem: Problem, arch: Architecture, mapping: Mapping, constraints: Constraints) -> list[str]:
    """Each of `constraints` that `mapping` breaks, in words (none: it meets them all),
    read as a search reads them (a preset expanded for the layer): what `mapper
    evaluate` says of the constraints among its files. Raises SpecError where they
    cannot apply to the layer (naming no file: the caller knows which)."""
    space = Mapspace(problem, arch, layer_constraints(constraints, problem, arch))
    return space.broken_constraints(batch_from_mappings(problem, arch, [mapping], remainders=True))


def explain(problem: Problem, arch: Architecture, mapping: Mapping, ev: Evaluation | None = None) -> Explanation:
    """Why the mapping costs what it does (`mapper explain`)."""
    return explain_evaluation(problem, arch, mapping, ev or evaluate(problem, arch, mapping))


def search(problem: Problem, arch: Architecture, out: str | Path, constraints: Constraints | None = None,
           **settings: Any) -> LayerResult:
    """Search one layer into the folder `out` (`mapper search`), resuming a search
    found there. `settings`: those of mapper.search.run.Settings (objective, trials,
    seconds, patience, seed, seeds, exhaustive, storage, remainders). Raises NoValidMapping with the
    reasons when nothing fits."""
    resolved = layer_constraints(constraints, problem, arch)
    chosen = _settings(settings)
    claim_layer_folder(problem, arch, resolved, chosen, Path(out))  # what `compare` and `explain` read it as
    return search_layer(problem, arch, resolved, chosen, Path(out))


def search_network(specs: Loaded, out: str | Path, jobs: int = 1, dataflow: str | None = None,
                   fusion: bool = False, **settings: Any) -> NetworkResult:
    """Search every layer of the loaded workload into `out` (`mapper search` on a
    workload): each shape once, `jobs` at a time, resuming what is there. `dataflow`:
    a preset for every layer; `fusion`: fused groups too (`--fusion`). Layers the
    constraints cannot apply to raise SpecError."""
    if specs.architecture is None or not specs.problems:
        raise SpecError(", ".join(specs.files), "", "no architecture or no layer",
                        "files that together give an architecture and at least one layer")
    constraints = specs.constraints
    if dataflow is not None:
        constraints = replace(constraints or Constraints(), preset=dataflow)
    layers = tuple(Layer(p, layer_constraints(constraints, p, specs.architecture)) for p in specs.problems)
    chosen = _settings(settings)
    groups = (fusion_candidates(list(specs.files), specs.batch, layers, specs.architecture, chosen.objective)
              if fusion else ())
    job = NetworkJob(network_name(list(specs.files)), specs.architecture, layers, chosen, Path(out), fusion=groups)
    with worker_pool(jobs) as pool:
        return run_network(job, pool)


# What `search` and `search_network` take as keyword settings: Settings' fields but the
# search effort, which only the benchmarks vary.
SETTINGS = tuple(f.name for f in fields(Settings) if f.name != "effort")


def _settings(given: dict[str, Any]) -> Settings:
    """The search settings of keyword arguments; a name that is none of them is a
    SpecError, as a misspelt option is on the command line."""
    for name in given:
        if name not in SETTINGS:
            raise SpecError(None, name, "an unknown search setting", ", ".join(SETTINGS), did_you_mean(name, SETTINGS))
    return Settings(**given)


def compare(*folders: str | Path) -> dict[str, Any]:
    """Finished runs side by side (`mapper compare`): each run's totals and each
    layer's figures, with their ratios to the first run and, for runs searched from
    several seeds, how far apart those ended and which ratios lie within that."""
    runs = [run for folder in folders for run in read_runs(Path(folder))]
    if not runs:
        raise SpecError(", ".join(map(str, folders)) or "compare()", "", "no runs",
                        "folders of finished searches or experiments")
    return comparison(runs)


def estimate(specs: Loaded, technology: float | str | None = None, backend: str = BUILT_IN) -> ArchitectureEstimate:
    """Energy per access, leakage and area of every level and the MACs of the loaded
    architecture (`mapper estimate`), at `technology` (nm, or a string such as "45nm";
    default: the architecture's)."""
    source = ", ".join(specs.files)
    if specs.architecture is None:
        raise SpecError(source, "", "no architecture", "files that give an architecture")
    try:
        node = technology_nm(technology) if technology is not None else specs.hardware.node_nm
        if node is None:
            raise SpecError(source, "architecture.technology", "no technology node", "architecture.technology in "
                            "the spec, or --technology NODE", "e.g. mapper estimate ARCH --technology 45nm")
        return estimate_architecture(specs.architecture, specs.hardware, node, backend)
    except EstimateError as e:
        raise SpecError(source, "technology" if technology is not None else "architecture", e.found,
                        e.allowed) from None


def graph(workload: str | Path, batch: int = 1) -> Any:
    """The workload's layers as a networkx DiGraph (mapper/workload_graph.py): nodes
    with their `problem`, edges producer -> consumer with `words` and `inferred`."""
    return workload_graph(*load_workload_inputs(workload, batch))
