"""Post `pulumi preview` output as a GitLab merge request note, editing this stack's earlier note if any.

    python scripts/post_mr_comment.py --stack dev --status 0 preview.txt

Reads GitLab's predefined CI variables (CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID) and the masked
CI/CD variable GITLAB_API_TOKEN (a project access token with the `api` scope, role Reporter or above; the job
token cannot write notes). The token only goes into the request header: it is never printed, and errors show
GitLab's status and message only. Standard library only, so it runs before or without the project's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

MAX_OUTPUT = 60_000  # characters of preview output kept in the note (GitLab allows ~1M; reviewers want less)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class GitLabError(RuntimeError):
    pass


def marker(stack: str) -> str:
    return f"<!-- pulumi-preview:{stack} -->"


def note_body(output: str, stack: str, status: int, job_url: Optional[str] = None) -> str:
    """The note: a headline saying whether the preview (and the policy pack) passed, then the output."""
    output = ANSI.sub("", output).replace("```", "'''")
    if len(output) > MAX_OUTPUT:
        cut = len(output) - MAX_OUTPUT
        output = f"[... {cut} characters cut: the full output is in the job log ...]\n" + output[-MAX_OUTPUT:]
    verdict = ("passed" if status == 0
               else f"failed (exit code {status}): a policy violation or an error, see below")
    lines = [marker(stack), f"#### `pulumi preview --diff --policy-pack policy` on stack `{stack}` {verdict}"]
    if job_url:
        lines.append(f"Job: {job_url}")
    lines += ["", "<details open><summary>Preview output</summary>", "", "```diff", output.rstrip("\n"), "```",
              "", "</details>"]
    return "\n".join(lines) + "\n"


def _request(method: str, url: str, token: str, data: Optional[dict[str, Any]] = None) -> tuple[Any, dict[str, str]]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method, headers={"PRIVATE-TOKEN": token})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:500]
        raise GitLabError(f"GitLab answered {err.code} to {method} {url.split('?')[0]}: {detail}") from None
    except urllib.error.URLError as err:
        raise GitLabError(f"cannot reach GitLab at {url.split('?')[0]}: {err.reason}") from None


def post(output: str, stack: str, status: int, env: dict[str, str]) -> str:
    """Create or update the note; returns 'created' or 'updated'."""
    missing = [n for n in ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", "GITLAB_API_TOKEN") if not env.get(n)]
    if missing:
        raise GitLabError(f"missing CI/CD variables: {', '.join(missing)} (GITLAB_API_TOKEN: a masked project "
                          "access token with the api scope)")
    token = env["GITLAB_API_TOKEN"]
    notes_url = (f"{env['CI_API_V4_URL'].rstrip('/')}/projects/{urllib.parse.quote(env['CI_PROJECT_ID'], safe='')}"
                 f"/merge_requests/{env['CI_MERGE_REQUEST_IID']}/notes")
    body = note_body(output, stack, status, env.get("CI_JOB_URL"))
    page: Optional[str] = "1"
    while page:
        notes, headers = _request("GET", f"{notes_url}?per_page=100&page={page}", token)
        for note in notes or []:
            if isinstance(note, dict) and marker(stack) in (note.get("body") or ""):
                _request("PUT", f"{notes_url}/{note['id']}", token, {"body": body})
                return "updated"
        page = headers.get("X-Next-Page") or headers.get("x-next-page")
    _request("POST", notes_url, token, {"body": body})
    return "created"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="file with the preview output")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--status", type=int, required=True, help="pulumi preview's exit code")
    args = parser.parse_args(argv)
    with open(args.output, encoding="utf-8", errors="replace") as handle:
        output = handle.read()
    try:
        done = post(output, args.stack, args.status, dict(os.environ))
    except GitLabError as err:
        print(f"post_mr_comment: {err}", file=sys.stderr)
        return 1
    print(f"post_mr_comment: {done} the preview note for stack {args.stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
