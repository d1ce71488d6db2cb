"""A PostgreSQL store for many writers: `mlpsuite server` on a throwaway cluster (initdb as an
unprivileged user, on a loopback port), and two drivers of one grid writing through it at once."""

import subprocess
import sys

import psycopg

from tests.grids import clean_env, run_mlpsuite
from tests.servers import free_port, postgres_cluster, start_suite_server, stop, two_grids_at_once


def test_two_drivers_of_one_grid_through_mlpsuite_server_on_postgresql(tmp_path):
    with postgres_cluster() as database:
        port = free_port()
        server = start_suite_server(tmp_path, port, database, tmp_path / "artifacts")
        try:
            client = two_grids_at_once(tmp_path, f"http://127.0.0.1:{port}", names=("shared", "shared"))
            experiment = client.get_experiment_by_name("shared")
            (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
            assert parent.info.status == "FINISHED" and parent.data.metrics["trials_counted"] == 3
            assert parent.data.tags["mlpsuite.invocations"] == "2"  # both drivers reopened the one parent
        finally:
            stop(server)
        # Read PostgreSQL itself, not through MLflow: the runs are rows of this database; the
        # claims a driver withdrew are deleted rows.
        with psycopg.connect(database) as connection:
            rows = connection.execute(
                "select r.status, count(*) from runs r join experiments e using (experiment_id) "
                "where e.name = 'shared' and r.lifecycle_stage = 'active' group by r.status").fetchall()
    assert rows == [("FINISHED", 4)]  # 3 trials, each run once, and the grid's parent


def test_a_postgresql_store_that_refuses_is_one_line(tmp_path):
    refused = run_mlpsuite("server", "--backend-store-uri", f"postgresql://mlpsuite:secret@127.0.0.1:{free_port()}/x",
                           cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "Connection refused" in refused.stderr and "secret" not in refused.stderr
    hide_driver = ("import sys; sys.modules['psycopg'] = None; from mlpsuite.cli import main; "
                   "sys.exit(main(['server', '--backend-store-uri', 'postgresql://mlpsuite@127.0.0.1:1/x']))")
    missing = subprocess.run([sys.executable, "-c", hide_driver], capture_output=True, text=True, cwd=tmp_path,
                             env=clean_env(), timeout=120)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "the database driver is not installed" in missing.stderr and ".[postgres]" in missing.stderr
