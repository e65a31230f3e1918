import json
from pipeline.errors import FAILURE_FILE_ENV
from tests.conftest import make_pipeline
from tests.s3server import free_ports

def test_step2_on_s3(tmp_path, source_files, s3_server):
    url = s3_server.data_dir()
    for p in make_pipeline(tmp_path / "data", source_files["northwind.sql"], source_files["order_details.csv"]):
        for job in ("postgres-to-lfs", "csv-to-lfs"):
            p.run_ok(job, day="2024-01-02")
        fs = s3_server.filesystem()
        fs.put(str(tmp_path / "data") + "/", url.removeprefix("s3://") + "/", recursive=True)
        r = p.run("lfs-to-analytics", day="2024-01-02", DATA_DIR=url, **s3_server.env())
        print(r.stderr[-1500:])
        assert r.returncode == 0
        before = s3_server.objects(url)
        r = p.run("lfs-to-analytics", day="2024-01-02", DATA_DIR=url, **s3_server.env())
        assert r.returncode == 0
        assert s3_server.objects(url) == before
        print(sorted(k for k in before if k.startswith("results")))
        (closed,) = free_ports(1)
        f = tmp_path / "f.jsonl"
        r = p.run("lfs-to-analytics", day="2024-01-02", DATA_DIR=url, **s3_server.env(AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed}"), **{FAILURE_FILE_ENV: str(f)})
        print(f.read_text())
        r = p.run("lfs-to-analytics", day="2024-01-02", DATA_DIR=url, **s3_server.env(AWS_SECRET_ACCESS_KEY="wrong"), **{FAILURE_FILE_ENV: str(f)})
        r = p.run("lfs-to-analytics", day="2024-01-02", DATA_DIR="s3://nobucket/x", **s3_server.env(), **{FAILURE_FILE_ENV: str(f)})
        print(f.read_text())
        # damage an object: permanent
        key = [k for k in before if k.endswith("order_details.csv") and k.startswith("csv/")][0]
        fs.pipe_file(url.removeprefix("s3://") + "/" + key, before[key] + b"10248,42,9.8,10,0\n")
        r = p.run("lfs-to-analytics", day="2024-01-02", DATA_DIR=url, **s3_server.env(), **{FAILURE_FILE_ENV: str(f)})
        print(f.read_text().splitlines()[-1])
