"""The package as another program gets it: the wheel's contents and metadata (an SPDX licence, the LICENSE
file, py.typed, no extra that only works from a checkout), and, installed beside a program with its own
`components/` or `providers/` folder, an error that says what shadows what instead of a bare ImportError."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.project_copy import package_source

# One worker runs the module, so the wheel is built once.
pytestmark = pytest.mark.xdist_group("packaging")

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = "import litellm_pulumi_access\nfrom components import UserWithKey, UserWithKeyArgs\nprint('imported')\n"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, source = tmp_path_factory.mktemp("wheel"), package_source(tmp_path_factory.mktemp("source"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    (built,) = out.glob("litellm_pulumi_access-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a folder of its own (its dependencies come from the running venv)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return target


def run_program(program_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`python main.py` in the program's folder (first on sys.path, as Python puts it), the package installed."""
    (program_dir / "main.py").write_text(PROGRAM)
    return subprocess.run([sys.executable, "-I", "-c",
                           f"import sys; sys.path[1:1] = [{str(site)!r}]; sys.path[0] = {str(program_dir)!r}; "
                           f"import runpy; runpy.run_path('main.py', run_name='__main__')"],
                          cwd=program_dir, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def test_the_wheel_has_a_licence_and_type_information(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"providers/py.typed", "components/py.typed", "litellm_pulumi_access.py"} <= names
    assert "litellm_pulumi_access-0.1.0.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read("litellm_pulumi_access-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "Provides-Extra" not in metadata  # the policy pack runs from a checkout (docs/reference.md), not as an extra
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License\n                           Version 2.0")


def test_a_program_without_folders_of_those_names_imports_the_component(installed: Path, tmp_path: Path) -> None:
    done = run_program(tmp_path, installed)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "imported\n"


@pytest.mark.parametrize("folder", ["components", "providers"])
def test_a_program_with_its_own_folder_of_that_name_gets_an_error_saying_so(installed: Path, tmp_path: Path,
                                                                              folder: str) -> None:
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "__init__.py").write_text("")
    done = run_program(tmp_path, installed)
    assert done.returncode == 1
    assert "litellm_pulumi_access.Shadowed: litellm-pulumi-access: " in done.stderr, done.stderr
    assert (f"the module {folder!r} found first is {tmp_path / folder}, not this package's {installed / folder}: "
            f"another {folder!r} (your program's own folder?) shadows it.") in done.stderr, done.stderr
    assert "Rename that folder" in done.stderr


def test_the_check_runs_from_a_shell(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "__init__.py").write_text("")
    command = [sys.executable, "-c", f"import sys, runpy; sys.path[0:0] = [{str(tmp_path)!r}, {str(installed)!r}]; "
               "runpy.run_module('litellm_pulumi_access', run_name='__main__')"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1
    assert f"the module 'components' found first is {tmp_path / 'components'}" in done.stderr, done.stderr
    (tmp_path / "components" / "__init__.py").unlink()  # a folder without __init__.py does not shadow a package
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"providers and components are this package's ({installed})\n"
