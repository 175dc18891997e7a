"""models_registered: every module of the models package is imported by what env.py imports."""

from __future__ import annotations

from ..helpers import Project, users_table

BASE = "import sqlalchemy as sa\nfrom sqlalchemy.orm import DeclarativeBase\n\nclass Base(DeclarativeBase):\n    pass\n"
USERS = (
    "import sqlalchemy as sa\nfrom sqlalchemy.orm import Mapped, mapped_column\nfrom .base import Base\n\n"
    "class User(Base):\n    __tablename__ = 'users'\n    id: Mapped[int] = mapped_column(primary_key=True)\n"
    "    name: Mapped[str] = mapped_column(sa.String(50))\n"
)
INVOICES = (
    "from sqlalchemy.orm import Mapped, mapped_column\nfrom .base import Base\n\n"
    "class Invoice(Base):\n    __tablename__ = 'invoices'\n    id: Mapped[int] = mapped_column(primary_key=True)\n"
)


def _app(project: Project, *, init: str) -> None:
    package = project.root / "myapp" / "models"
    package.mkdir(parents=True)
    (project.root / "myapp" / "__init__.py").write_text("")
    (package / "__init__.py").write_text(init)
    (package / "base.py").write_text(BASE)
    (package / "users.py").write_text(USERS)
    (package / "billing.py").write_text(INVOICES)
    project.edit_env(
        "target_metadata = None",
        "import myapp.models\nfrom myapp.models.base import Base\ntarget_metadata = Base.metadata",
    )
    project.revision(**users_table("a1"))


def test_a_models_module_nobody_imports_is_named(project: Project) -> None:
    _app(project, init="from . import users\n")
    result = project.run("--migrations-checks", "models_registered", "--migrations-models-package", "myapp.models")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "1 table(s) of myapp.models are not registered on env.py's target_metadata: drift and *cannot see them*",
            "    table invoices: defined in myapp.models.billing",
            "    import myapp.models.billing where env.py's models are imported*",
        ]
    )


def test_every_module_imported_passes_and_the_check_needs_its_package(project: Project) -> None:
    _app(project, init="from . import billing, users\n")
    project.pytester.makeini("[pytest]\nmigrations_models_package = myapp.models\n")
    project.run("--migrations-checks", "models_registered").assert_outcomes(passed=1)
    project.pytester.makeini("[pytest]\n")
    usage = project.run("--migrations-checks", "models_registered")
    usage.stderr.fnmatch_lines(["*the models_registered check imports every module of the models package: name it*"])
