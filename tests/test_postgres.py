"""A PostgreSQL store for many writers: `mlpsuite server` on a throwaway cluster (initdb as an
unprivileged user, on a loopback port), and two drivers of one grid writing through it at once."""

import sys

import psycopg
import pytest

from tests.grids import cli_in_process
from tests.servers import free_port, postgres_cluster, start_suite_server, stop, two_grids_at_once


def test_two_drivers_of_one_grid_through_mlpsuite_server_on_postgresql(tmp_path):
    with postgres_cluster() as database:
        port = free_port()
        server = start_suite_server(tmp_path, port, database, tmp_path / "artifacts")
        try:
            client = two_grids_at_once(
                tmp_path, f"http://127.0.0.1:{port}", names=("shared", "shared")
            )
            experiment = client.get_experiment_by_name("shared")
            assert experiment is not None
            (parent,) = client.search_runs(
                [experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'"
            )
            assert parent.info.status == "FINISHED" and parent.data.metrics["trials_counted"] == 3
            assert (
                parent.data.tags["mlpsuite.invocations"] == "2"
            )  # both drivers reopened the one parent
        finally:
            stop(server)
        # Read PostgreSQL itself, not through MLflow: the runs are rows of this database; the
        # claims a driver withdrew are deleted rows.
        with psycopg.connect(database) as connection:
            rows = connection.execute(
                "select r.status, count(*) from runs r join experiments e using (experiment_id) "
                "where e.name = 'shared' and r.lifecycle_stage = 'active' group by r.status"
            ).fetchall()
    assert rows == [("FINISHED", 4)]  # 3 trials, each run once, and the grid's parent


@pytest.mark.check
def test_a_postgresql_store_that_refuses_is_one_line(capsys, monkeypatch):
    code, _, err = cli_in_process(
        capsys,
        "server",
        "--backend-store-uri",
        f"postgresql://mlpsuite:secret@127.0.0.1:{free_port()}/x",
    )
    assert code == 2 and err.count("\n") == 1, err
    assert "Connection refused" in err and "secret" not in err
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the driver were not installed
    code, _, err = cli_in_process(
        capsys, "server", "--backend-store-uri", "postgresql://mlpsuite@127.0.0.1:1/x"
    )
    assert code == 2 and err.count("\n") == 1, err
    assert "the database driver is not installed" in err and ".[postgres]" in err
