"""The task store mirrored into Airflow's metadata database, where upstream's executor reads it.

Upstream creates a pod only for a task instance row that is QUEUED with the workload's try number
and queued by its own scheduler job, reads a Succeeded pod's task state from its row, and asks
the job table which schedulers are alive. So before each call into upstream the host writes what
changed in its task store (states, tries, owners, scheduler heartbeats) to real rows: DAGs
serialized as the DAG processor would, one run per run id, task instance rows with a fresh id per
try (as Airflow gives each try), and Job rows. Ids come from the world's seeded RNG.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from executor.host import TaskInstance as StoreTI, TaskStore

BUNDLE = "dags-folder"
LOGICAL_DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)


class MirrorError(ValueError):
    """The task store holds something Airflow's database cannot (an invalid DAG or task id)."""


def seeded_uuid7(rng: random.Random) -> uuid.UUID:
    """A version-7 UUID from the seeded RNG (Airflow gives task instances uuid7 ids)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF << 76)) | (7 << 76)          # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)        # RFC 4122 variant
    return uuid.UUID(int=value)


class MetadataMirror:
    """Airflow's rows for the task store's task instances and scheduler jobs."""

    def __init__(self, store: TaskStore, rng: random.Random, epoch: datetime):
        from airflow import settings
        self.store, self.rng, self.epoch = store, rng, epoch
        self.session = settings.NonScopedSession()   # its own: upstream closes the scoped one after each call
        self.rows: dict[tuple, object] = {}        # store primary -> TaskInstance ORM row
        self.written: dict[tuple, tuple] = {}      # store primary -> (state, try, owner) last written
        self.jobs: dict[str, object] = {}

    def close(self) -> None:
        self.session.close()

    # -- writing what changed ------------------------------------------------------------------

    def flush(self) -> None:
        """Write every change of the task store since the last flush, then commit."""
        missing = [ti for primary, ti in self.store.tis.items() if primary not in self.rows]
        if missing:
            self._create(missing)
        for primary, ti in self.store.tis.items():
            wanted = (ti.state, ti.try_number, ti.queued_by_job_id)
            if self.written.get(primary) != wanted:
                self._write(self.rows[primary], ti, self.written.get(primary))
                self.written[primary] = wanted
        self._write_jobs()
        self.session.commit()

    def _write(self, row, ti: StoreTI, before: tuple | None) -> None:
        if before is not None and ti.try_number != before[1] and ti.try_number > 0:
            row.id = seeded_uuid7(self.rng)   # each try is a new row id in Airflow 3
        row.state = ti.state
        row.try_number = ti.try_number
        row.queued_by_job_id = int(ti.queued_by_job_id) if ti.queued_by_job_id else None

    def _write_jobs(self) -> None:
        from airflow.jobs.job import Job
        for job_id, record in self.store.jobs.items():
            job = self.jobs.get(job_id)
            if job is None:
                job = Job(job_type="SchedulerJob")
                job.id = int(job_id)
                job.hostname = f"scheduler-{job_id}"
                job.start_date = self.at(0.0)
                self.session.add(job)
                self.jobs[job_id] = job
            job.state = record.state
            job.latest_heartbeat = self.at(record.latest_heartbeat)

    def at(self, virtual_seconds: float) -> datetime:
        return self.epoch + timedelta(seconds=virtual_seconds)

    # -- creating rows -------------------------------------------------------------------------

    def _create(self, tis: list[StoreTI]) -> None:
        """DAGs (serialized, as the DAG processor writes them), runs and task instance rows."""
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
        DagBundlesManager().sync_bundles_to_db()
        by_dag: dict[str, list[StoreTI]] = defaultdict(list)
        for ti in tis:
            by_dag[ti.dag_id].append(ti)
        bag = DagBag(dag_folder=str(self.epoch.year))  # a folder that does not exist: no files parsed
        for dag_id, members in by_dag.items():
            bag.bag_dag(self._dag(dag_id, members))
        sync_bag_to_db(bag, BUNDLE, None)
        for dag_id, members in by_dag.items():
            self._runs(dag_id, members)
        self.session.commit()

    def _dag(self, dag_id: str, tis: list[StoreTI]):
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG
        try:
            with DAG(dag_id, schedule=None, start_date=LOGICAL_DATE) as dag:
                for task_id in dict.fromkeys(ti.task_id for ti in tis):
                    EmptyOperator(task_id=task_id)
        except Exception as exc:
            raise MirrorError(f"Airflow cannot hold DAG {dag_id!r} (task ids {sorted({t.task_id for t in tis})[:3]}"
                              f"...): {exc}; upstream's executor needs ids Airflow accepts "
                              f"(letters, digits, '_', '.', '-', at most 250 characters)") from exc
        return dag

    def _runs(self, dag_id: str, tis: list[StoreTI]) -> None:
        from airflow.models.serialized_dag import SerializedDagModel
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType, DagRunType
        serialized = SerializedDagModel.get_dag(dag_id, session=self.session)
        for run_id in dict.fromkeys(ti.run_id for ti in tis):
            run = serialized.create_dagrun(
                run_id=run_id, logical_date=LOGICAL_DATE, data_interval=(LOGICAL_DATE, LOGICAL_DATE),
                run_after=LOGICAL_DATE, run_type=DagRunType.from_run_id(run_id),
                triggered_by=DagRunTriggeredByType.TIMETABLE, state=DagRunState.RUNNING, session=self.session)
            rows = {(row.task_id, row.map_index): row for row in run.get_task_instances(session=self.session)}
            for ti in tis:
                if ti.run_id != run_id:
                    continue
                row = rows[(ti.task_id, ti.map_index)]
                row.id = seeded_uuid7(self.rng)
                row.executor_config = self._executor_config(ti.executor_config)
                self.rows[ti.primary] = row

    def _executor_config(self, config) -> dict:
        """A task's executor_config as a DAG author writes it: pod_override as a V1Pod."""
        if not config:
            return {}
        config = dict(config)
        override = config.get("pod_override")
        if isinstance(override, dict):
            from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
            config["pod_override"] = PodGenerator.deserialize_model_dict(override)
        return config

    # -- reading rows for upstream -------------------------------------------------------------

    def row(self, primary: tuple):
        """The task instance row of a store primary key (flushed first by the caller)."""
        return self.rows[primary]
