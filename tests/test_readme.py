"""Every example of README.md runs: each ```python block and each line of each ```bash block.

The blocks run in README order in one scratch folder, so a later command finds what an
earlier one made (build-dataset -> train -> evaluate). The folder holds what the README
names:

- ``kplr009002278-2012179063303_llc.fits`` (Kepler-62, Q13) and ``wasp18b.fits``
  (WASP-18, TESS sector 2): links to the files of ``../shared/data``;
- ``lightcurves/``: a folder with both of them;
- ``../shared/data``: a link to the real data folder;
- ``config.json``: the packaged config with small counts (:data:`SMALL_COUNTS`), so
  builds take seconds; ``local.json``: the same with the KOI table of ``../shared/data``
  and ``output_root`` ``local``, as the README describes it.

Commands are run as written, except that the set-up step (:data:`SETUP`, which installed
what runs these tests) is dropped, :data:`REDUCED` appends flags that shrink their work,
and :data:`SKIPPED` lists the few that cannot run here, with the reason.
A block that cannot run for another stated reason opts out with a comment line
``# readme-test: skip <reason>``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
SKIP_MARK = re.compile(r"#\s*readme-test:\s*skip\s+(.+)")

#: The set-up step, done before the tests run (it installed what runs them): dropped.
SETUP = "bash scripts/setup.sh && "
#: Command fragments that cannot run in the test suite, and why.
SKIPPED = {
    "python -m pytest": "is the test suite itself",
    "--source mast": "needs the internet (MAST); the MAST client is tested on recorded responses in test_mast.py",
    "--preset default": "trains the shipped model's recipe (~25 min of CPU)",
}
#: Flags appended to commands whose README form takes minutes.
REDUCED = {
    "exoperiod train --config": "--epochs 1 --samples-per-epoch 64",
    "torchrun --standalone --nproc_per_node 2 -m exoperiod.cli train": "--epochs 1 --samples-per-epoch 64",
    "exoperiod run": "--samples 200",
}
# Four positive stars: the first two KOI hosts with files in ../shared/data are 10-day Q0
# files, shorter than one dataset window, and a build that writes nothing fails.
SMALL_COUNTS = {"positive_sample_count": 4, "negative_sample_count": 2, "synthetic_samples_count": 16}
FILES = {
    "kplr009002278-2012179063303_llc.fits": "lightcurves/kepler/9002278/kplr009002278-2012179063303_llc.fits",
    "wasp18b.fits": "lightcurves/tess/100100827/wasp18b.fits",
}


def _blocks() -> list[tuple[str, str, int]]:
    """(language, code, line number) of every fenced block."""
    text = README.read_text()
    return [(m.group(1).lower(), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def _examples() -> list:
    """One example per python block and per command line of a bash block."""
    cases = []
    for lang, code, line in _blocks():
        if lang == "python":
            cases.append(pytest.param("python", code, id=f"python@{line}"))
        elif lang in ("bash", "sh", "shell", "console"):
            joined = code.replace("\\\n", " ")
            for offset, command in enumerate(joined.splitlines()):
                command = command.removeprefix("$ ").strip()
                if command and not command.startswith("#"):
                    cases.append(pytest.param("bash", command, id=f"bash@{line + 1 + offset}: {command[:50]}"))
    return cases


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    root = tmp_path_factory.mktemp("readme")
    (root / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    cwd = root / "work"
    (cwd / "lightcurves").mkdir(parents=True)
    for name, rel in FILES.items():
        (cwd / name).symlink_to(shared_data / rel)
        (cwd / "lightcurves" / name).symlink_to(shared_data / rel)
    config = json.loads((REPO / "config.json").read_text())
    config.update(SMALL_COUNTS)
    (cwd / "config.json").write_text(json.dumps(config, indent=2))
    config.update(koi_table="../shared/data/tables/koi_cumulative.csv", output_root="local")
    (cwd / "local.json").write_text(json.dumps(config, indent=2))
    return cwd


def test_the_readme_has_examples() -> None:
    kinds = {case.values[0] for case in _examples()}
    assert kinds == {"python", "bash"}


@pytest.mark.slow
@pytest.mark.parametrize("lang, code", _examples())
def test_readme_example_runs(lang: str, code: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marked = SKIP_MARK.search(code)
    if marked:
        pytest.skip(marked.group(1))
    reason = next((why for fragment, why in SKIPPED.items() if fragment in code), None)
    if reason:
        pytest.skip(reason)
    code = code.removeprefix(SETUP)
    monkeypatch.chdir(workdir)
    if lang == "python":
        exec(compile(code, f"README.md python block in {workdir}", "exec"), {"__name__": "__readme__"})
        return
    command = code + "".join(f" {extra}" for fragment, extra in REDUCED.items() if code.startswith(fragment))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    # `exoperiod` and `python` of this interpreter, whatever the PATH says.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _contract() -> dict:
    """The README's JSON example, its ``[...]`` placeholders made empty lists."""
    (code,) = [code for lang, code, _ in _blocks() if lang == "json"]
    return json.loads(re.sub(r"\[\.\.\.[^\]]*\]", "[]", code))


def test_the_json_contract_of_the_readme_holds(shared_data: Path, shipped_model) -> None:
    from exoperiod import predict

    example = _contract()
    got = predict(shared_data / FILES["kplr009002278-2012179063303_llc.fits"], model=shipped_model).to_dict()
    assert set(example) <= set(got), "keys of the README's JSON example missing from predict's JSON"
    assert set(example["candidates"][0]) <= set(got["candidates"][0])
    assert len(got["bin_probabilities"]) == len(got["bin_centers_days"]) == 100



def test_the_readme_dask_config_file_gives_a_cluster_of_your_own_what_workers_n_gets() -> None:
    import dask
    import distributed  # noqa: F401 - registers Dask's distributed defaults
    import yaml

    from exoperiod.search.batch import WORKER_DASK_CONFIG

    (code,) = [code for lang, code, _ in _blocks() if lang == "yaml"]
    from_file = dask.config.update(copy.deepcopy(dask.config.config), yaml.safe_load(code))
    with dask.config.set(WORKER_DASK_CONFIG):
        local = copy.deepcopy(dask.config.get("distributed"))
    assert from_file["distributed"] == local
    assert local["worker"]["profile"]["enabled"] is False
    assert local["nanny"]["pre-spawn-environ"]["MALLOC_TRIM_THRESHOLD_"] is None
