"""Airflow in this process: its home, its metadata database, and whether it is installed at all.

Airflow reads its configuration from the environment when it is first imported, so everything it
must see (a private AIRFLOW_HOME, a sqlite metadata database, no example DAGs) is set here, before
that import. The database is created once per process (about 1.5 s) and copied afresh for each
simulated world, so no run sees another's rows.
"""

from __future__ import annotations

import atexit
import logging
import importlib.metadata
import os
import shutil
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

PROVIDER = "apache-airflow-providers-cncf-kubernetes"
EXECUTOR_LOGGER = "airflow.providers.cncf.kubernetes"
INSTALL_HINT = "install the extra: pip install -c constraints-airflow.txt -e '.[airflow]'"


class UpstreamUnavailable(RuntimeError):
    """Airflow's KubernetesExecutor cannot run here; the message says why and what to do."""


def installed_versions() -> dict[str, str] | None:
    """The installed versions of Airflow and the provider, or None when either is missing."""
    try:
        return {"apache-airflow": importlib.metadata.version("apache-airflow"),
                PROVIDER: importlib.metadata.version(PROVIDER),
                "kubernetes": importlib.metadata.version("kubernetes")}
    except importlib.metadata.PackageNotFoundError:
        return None


def unavailable_reason() -> str | None:
    """Why the upstream executor cannot run in this environment (None: it can)."""
    if installed_versions() is None:
        return (f"Airflow's KubernetesExecutor is not installed (apache-airflow and {PROVIDER}); "
                f"{INSTALL_HINT}")
    return None


@cache
def airflow_home() -> Path:
    """A private AIRFLOW_HOME for this process, set before Airflow is imported; removed at exit."""
    home = Path(tempfile.mkdtemp(prefix="kubesim-airflow-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "kubesim-not-a-secret",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    for name, value in settings.items():
        os.environ[name] = value
    return home


@cache
def import_airflow():
    """Import Airflow (about 3 s, once per process) with the settings above; returns its
    ``conf``. Raises UpstreamUnavailable when it is not installed."""
    reason = unavailable_reason()
    if reason:
        raise UpstreamUnavailable(reason)
    airflow_home()
    with logging_kept():   # Airflow's console handlers stay out: the run log has its lines
        import airflow  # noqa: F401  (configures itself from the environment set above)
        from airflow.configuration import conf
    log_through_stdlib()
    return conf


@contextmanager
def logging_kept():
    """Undo what the block does to the root logger and to other loggers' ``disabled`` flags (a
    ``logging.config`` call disables every logger it does not name)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    enabled = [lg for lg in logging.Logger.manager.loggerDict.values()
               if isinstance(lg, logging.Logger) and not lg.disabled]
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level
        for logger in enabled:
            logger.disabled = False


def log_through_stdlib() -> None:
    """Airflow logs through structlog to its own console renderer; send its lines to the standard
    logging instead, where kubesim's run log stamps them with virtual time (the executor's at INFO,
    the rest of Airflow's only from WARNING: its database and DAG parsing chatter is not the run's)."""
    import structlog
    structlog.configure(
        processors=[structlog.stdlib.PositionalArgumentsFormatter(), structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(), wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False)
    for name in ("airflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger(EXECUTOR_LOGGER).setLevel(logging.INFO)


@cache
def template_database() -> Path:
    """A metadata database with Airflow's tables, made once per process."""
    import_airflow()
    from airflow import settings
    from airflow.utils import db
    with logging_kept():   # Alembic's migration environment configures logging from its own file
        db.initdb()
    settings.engine.dispose()
    template = airflow_home() / "template.db"
    shutil.copyfile(airflow_home() / "airflow.db", template)
    return template


def fresh_database() -> None:
    """Put an empty metadata database in place for a new world (every connection closed first)."""
    template = template_database()
    from airflow import settings
    settings.Session.remove()
    settings.engine.dispose()
    shutil.copyfile(template, airflow_home() / "airflow.db")
