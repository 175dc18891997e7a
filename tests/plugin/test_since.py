"""CI mode: --migrations-since REF tests only the revisions a branch added, and history_unchanged guards the rest."""

from __future__ import annotations

import subprocess

import pytest

from ..helpers import Project, users_table


def _git(project: Project, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args],
        cwd=project.root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def released(project: Project) -> Project:
    """A git repository whose tag `released` holds two revisions (a1, b2)."""
    project.revision(**users_table("a1"))
    project.revision(
        "b2", "a1", 'op.add_column("users", sa.Column("email", sa.String(80)))', 'op.drop_column("users", "email")'
    )
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "released")
    _git(project, "tag", "released")
    return project


def test_only_the_revisions_added_since_the_ref_get_stairway_items(released: Project) -> None:
    released.revision(
        "c3", "b2", 'op.create_index("ix_email", "users", ["email"])', 'op.drop_index("ix_email", "users")'
    )
    released.revision(
        "d4", "c3", 'op.add_column("users", sa.Column("plan", sa.String(10)))', 'op.drop_column("users", "plan")'
    )
    released.revision("e5", "d4", 'op.create_index("ix_plan", "users", ["plan"])', 'op.drop_index("ix_plan", "users")')
    result = released.run("--migrations-since", "released", "--collect-only", "-q")
    stairway = [line for line in result.outlines if "::stairway[" in line]
    assert stairway == [f"migrations/env.py::stairway[{rev}]" for rev in ("c3", "d4", "e5")]
    result = released.run("--migrations-since", "released", "--migrations-checks", "stairway,history_unchanged")
    result.assert_outcomes(passed=4)


def test_an_edited_revision_of_the_ref_fails_naming_its_file(released: Project) -> None:
    """Comments and formatting may change; code may not: the failure names the file and shows the diff."""
    b2 = released.versions / "b2_rev.py"
    text = b2.read_text().replace("def upgrade():", "# reviewed\ndef upgrade():")
    b2.write_text(text.replace("sa.String(80)", "sa.String(120)"))
    released.revision("c3", "b2", "pass", "pass")
    result = released.run("--migrations-since", "released", "--migrations-checks", "history_unchanged")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "1 change(s) to the history of released (*): revisions that exist there have most likely run in production*",
            "  migrations/versions/b2_rev.py:",
            "    upgrade() changed since released:",
            "*-    op.add_column('users', sa.Column('email', sa.String(80)))",
            "*+    op.add_column('users', sa.Column('email', sa.String(120)))",
            "*git checkout released -- <file>*",
        ]
    )


def test_comments_and_docstrings_of_the_ref_may_change(released: Project) -> None:
    b2 = released.versions / "b2_rev.py"
    b2.write_text(
        b2.read_text().replace("def upgrade():", "# the email column, see #123\ndef upgrade():\n    '''Add email.'''")
    )
    result = released.run("--migrations-since", "released", "--migrations-checks", "history_unchanged")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no revision was added since released*"])


def test_a_new_revision_below_the_refs_head_and_a_deleted_one_fail(released: Project) -> None:
    released.revision("c3", "a1", "pass", "pass")  # branches off a1, below the released head b2
    (released.versions / "b2_rev.py").unlink()
    released.revision("b2x", "a1", "pass", "pass")
    result = released.run("--migrations-since", "released", "--migrations-checks", "history_unchanged")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*revision b2 exists at released but not any more: deleted, or its id changed*"])
    result.stdout.fnmatch_lines(["*new revision c3 builds on a1 of released but on none of its head(s) b2*"])


def test_an_unknown_ref_and_history_unchanged_without_a_ref(released: Project) -> None:
    result = released.run("--migrations-since", "origin/nope", "--migrations-checks", "stairway,history_unchanged")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*git knows no commit 'origin/nope'*fetch it first*"])
    usage = released.run("--migrations-checks", "history_unchanged")
    usage.stderr.fnmatch_lines(
        ["*the history_unchanged check compares the history with a git ref: give it with --migrations-since REF*"]
    )
