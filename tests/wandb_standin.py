"""A stand-in of W&B's backend, for the tests only: W&B's real CLI and SDK talk to it instead of api.wandb.ai.

    from tests.wandb_standin import StandIn
    with StandIn() as server:                      # serves http://127.0.0.1:<port> on a thread
        env = server.env(tmp_path)                 # WANDB_BASE_URL, a dummy API key, online mode, W&B's folders
        ... run `make sweep BACKEND=wandb` or `wandb agent` with env ...
        server.runs["<run id>"]                    # what each run sent: config, history rows, summary, exit code

It holds sweeps, agents and runs in memory and answers the GraphQL operations W&B's CLI and SDK (0.31) send for
`wandb.sweep`, `wandb agent` and `wandb.init`/`log`/`finish` (matched by their first field: the SDK sends an empty
operationName), the file uploads and the run's file stream. Each run an agent asks for is chosen by W&B's own sweep
engine (the `sweeps` package, `next_run`), as W&B's server does. What it proves: our commands, one agent per GPU,
where records land and what the runs log, against W&B's real client code. What it cannot: authentication, quotas,
W&B's server itself (its scheduling, its UI); only a real account shows those.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ENTITY = "standin"
FIRST_FIELD = re.compile(r"^[^{]*\{\s*(\w+)", re.S)


class StandIn:
    """The server; a context manager that starts it on a free port of 127.0.0.1 and stops it on exit."""

    def __init__(self) -> None:
        self.sweeps: dict[str, dict] = {}  # sweep id -> {"config", "project", "runs": [run id], "state"}
        self.agents: dict[str, dict] = {}  # agent id -> {"sweep", "host"}
        self.runs: dict[str, dict] = {}  # run id -> {"sweep", "project", "config", "history", "summary", "exitcode"}
        self.unknown: list[str] = []  # operations it did not know (a test may assert there are none)
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self, home: Path) -> dict[str, str]:
        """The environment that points W&B's CLI and SDK at this server, with W&B's folders under ``home``."""
        return {"WANDB_BASE_URL": self.url, "WANDB_API_KEY": "s" * 40, "WANDB_MODE": "online",
                "WANDB_ENTITY": ENTITY, "WANDB_DIR": str(home), "WANDB_CONFIG_DIR": str(home / "wandb-config"),
                "WANDB_CACHE_DIR": str(home / "wandb-cache"), "WANDB_AGENT_DISABLE_FLAPPING": "true",
                "WANDB_DISABLE_CODE": "true", "WANDB_SILENT": "true"}

    # GraphQL: one method per operation, named after its first field.
    def graphql(self, query: str, variables: dict) -> dict:
        match = FIRST_FIELD.match(query)
        field = match.group(1) if match else ""
        handler = getattr(self, f"_op_{field}", None)
        if handler is None:
            self.unknown.append(field)
            return {field: None}
        with self.lock:
            return {field: handler(query, variables)}

    def _op_viewer(self, query: str, variables: dict) -> dict:
        return {"id": "VXNlcjox", "entity": ENTITY, "username": ENTITY, "email": "standin@localhost", "admin": False,
                "flags": "{}", "teams": {"edges": [{"node": {"name": ENTITY}}]}, "photoUrl": None,
                "apiKeys": {"edges": []}, "defaultFramework": None, "userInfo": None}

    def _op_serverInfo(self, query: str, variables: dict) -> dict:
        return {"features": [], "cliVersionInfo": {}, "latestLocalVersionInfo": None,
                "availableBucketProviders": []}

    def _op_upsertSweep(self, query: str, variables: dict) -> dict:
        sweep_id = variables.get("id") or uuid.uuid4().hex[:8]
        project = variables.get("projectName") or "uncategorized"
        self.sweeps.setdefault(sweep_id, {"runs": [], "state": "RUNNING"})
        self.sweeps[sweep_id].update(config=variables["config"], project=project)
        return {"sweep": {"id": sweep_id, "name": sweep_id,
                          "project": {"id": project, "name": project, "entity": {"id": ENTITY, "name": ENTITY}}},
                "configValidationWarnings": []}

    def _op_project(self, query: str, variables: dict) -> dict | None:
        """Everything below a project: a sweep with its runs (the agent; wandb.Api().sweep), one run (its resume
        status, history keys and history pages) or a page of runs (wandb.Api().runs, a sweep's runs)."""
        name = variables.get("project") or variables.get("projectName") or variables.get("name")
        project = {"id": name, "name": name, "internalId": 1, "readOnly": False, "entityName": ENTITY,
                   "entity": {"id": ENTITY, "name": ENTITY}}
        if "sweep(" in query:
            sweep_id = variables.get("sweep") or variables.get("name")
            sweep = self.sweeps.get(sweep_id)
            project["sweep"] = self._sweep_node(sweep_id, sweep) if sweep else None
        if "runs(" in query:
            filters = json.loads(variables.get("filters") or "{}")
            wanted = {clause["sweep"] for clause in filters.get("$and", []) if "sweep" in clause}
            runs = [run_id for run_id, run in self.runs.items() if run["project"] == name
                    and (not wanted or run["sweep"] in wanted) and run["state"] != "pending"]
            project["runCount"] = len(runs)
            project["runs"] = {"edges": [{"node": {**self._run_node(r), "projectId": 1}, "cursor": r} for r in runs],
                               "pageInfo": {"hasNextPage": False, "endCursor": runs[-1] if runs else None}}
        elif "run(" in query:
            run_id = variables.get("run") or variables.get("name") or variables.get("runName")
            node = self._run_node(run_id) if run_id in self.runs else None
            if node is not None and "history(" in query:
                low, high = variables.get("minStep", 0), variables.get("maxStep", 1 << 62)
                node["history"] = [json.dumps(row) for row in self.runs[run_id]["history"]
                                   if low <= row.get("_step", 0) < high]
            project["run"] = node
        return project

    def _op_model(self, query: str, variables: dict) -> dict | None:
        """A run's resume status, asked when it starts: a new run has no bucket yet."""
        run = self.runs.get(variables.get("name"))
        return {"id": variables.get("project"), "name": variables.get("project"),
                "entity": {"id": ENTITY, "name": ENTITY},
                "bucket": None if run is None or not run["history"] else self._run_node(variables["name"])}

    def _sweep_node(self, sweep_id: str, sweep: dict) -> dict:
        config = yaml.safe_load(sweep["config"])
        runs = [self._run_node(run_id) for run_id in sweep["runs"]]
        return {"id": sweep_id, "name": sweep_id, "displayName": config.get("name"), "method": config["method"],
                "state": sweep["state"], "description": None, "config": sweep["config"], "createdAt": None,
                "heartbeatAt": None, "updatedAt": None, "earlyStopJobRunning": False, "bestLoss": None,
                "controller": None, "scheduler": None, "runCount": len(runs), "runCountExpected": None,
                "project": {"id": sweep["project"], "name": sweep["project"],
                            "entity": {"id": ENTITY, "name": ENTITY}},
                "runs": {"edges": [{"node": run} for run in runs],
                         "pageInfo": {"hasNextPage": False, "endCursor": None}}}

    def _run_node(self, run_id: str) -> dict:
        run = self.runs[run_id]
        state = run["state"]
        steps = [row["_step"] for row in run["history"] if "_step" in row]
        keys = {key: {"typeCounts": [{"type": "number", "count": 1}]} for row in run["history"] for key in row}
        return {"id": run_id, "name": run_id, "displayName": run.get("display_name") or run_id, "state": state,
                "tags": [], "group": None,
                "jobType": None, "commit": None, "readOnly": False, "createdAt": "2026-01-01T00:00:00",
                "description": None, "notes": None, "systemMetrics": "{}", "user": {"name": ENTITY,
                                                                                    "username": ENTITY},
                "config": json.dumps({k: {"value": v, "desc": None} for k, v in run["config"].items()}),
                "exitcode": run["exitcode"], "heartbeatAt": None, "shouldStop": False, "failed": state == "failed",
                "stopped": False, "running": state == "running",
                "summaryMetrics": json.dumps(run["summary"]), "sampledHistory": [], "historyLineCount": len(steps),
                "historyKeys": {"lastStep": max(steps) if steps else -1, "keys": keys}, "sweepName": run["sweep"]}

    def _op_createAgent(self, query: str, variables: dict) -> dict:
        agent_id = uuid.uuid4().hex[:8]
        self.agents[agent_id] = {"sweep": variables["sweep"], "host": variables.get("host")}
        return {"agent": {"id": agent_id}}

    def _op_agentHeartbeat(self, query: str, variables: dict) -> dict:
        """The next grid point by W&B's own sweep engine, or "exit" once the grid is used up."""
        import experiments.infra.sweep_file  # noqa: F401 - it filters the sweeps package's harmless pydantic warnings
        from sweeps import RunState, SweepRun, next_run

        agent = self.agents[variables["id"]]
        sweep = self.sweeps[agent["sweep"]]
        running = json.loads(variables.get("runState") or "{}")
        if running:  # the agent is still busy with its run: nothing new for it
            return {"agent": {"id": variables["id"]}, "commands": "[]"}
        done = [SweepRun(name=run_id, state=RunState.finished,
                         config={k: {"value": v} for k, v in self.runs[run_id]["sweep_params"].items()})
                for run_id in sweep["runs"]]
        config = yaml.safe_load(sweep["config"])
        suggestion = next_run(config, done)
        if suggestion is None:
            sweep["state"] = "FINISHED"
            return {"agent": {"id": variables["id"]}, "commands": json.dumps([{"type": "exit"}])}
        run_id = uuid.uuid4().hex[:8]
        params = {k: v["value"] for k, v in suggestion.config.items()}
        self._new_run(run_id, agent["sweep"], sweep["project"], params)
        command = {"type": "run", "run_id": run_id, "program": config.get("program"), "args": suggestion.config}
        return {"agent": {"id": variables["id"]}, "commands": json.dumps([command])}

    def _new_run(self, run_id: str, sweep_id: str | None, project: str, params: dict) -> dict:
        run = {"sweep": sweep_id, "project": project, "sweep_params": params, "config": {}, "history": [],
               "summary": {}, "exitcode": None, "state": "pending", "files": {}}
        self.runs[run_id] = run
        if sweep_id:
            self.sweeps[sweep_id]["runs"].append(run_id)
        return run

    def _op_upsertBucket(self, query: str, variables: dict) -> dict:
        run_id = variables.get("name") or uuid.uuid4().hex[:8]
        project = variables.get("project") or variables.get("modelName") or "uncategorized"
        run = self.runs.get(run_id) or self._new_run(run_id, variables.get("sweep"), project, {})
        run["state"] = "running" if run["exitcode"] is None else run["state"]
        run["display_name"] = variables.get("displayName") or run.get("display_name")
        if variables.get("config"):
            config = json.loads(variables["config"])
            run["config"] = {k: v.get("value") if isinstance(v, dict) else v for k, v in config.items()}
        if variables.get("summaryMetrics"):
            run["summary"].update(json.loads(variables["summaryMetrics"]))
        return {"bucket": {"id": run_id, "name": run_id, "displayName": variables.get("displayName") or run_id,
                           "description": None, "config": json.dumps(run["config"]), "sweepName": run["sweep"],
                           "historyLineCount": len(run["history"]), "eventsLineCount": 0,
                           "project": {"id": project, "name": project, "entity": {"id": ENTITY, "name": ENTITY}}},
                "inserted": True}

    def _op_createRunFiles(self, query: str, variables: dict) -> dict:
        run_id = variables["run"]
        return {"runID": run_id, "uploadHeaders": [],
                "files": [{"name": name, "uploadUrl": f"{self.url}/upload/{run_id}/{name}"}
                          for name in variables["files"]]}

    def file_stream(self, run_id: str, body: dict) -> None:
        with self.lock:
            run = self.runs.get(run_id) or self._new_run(run_id, None, "uncategorized", {})
            for name, chunk in (body.get("files") or {}).items():
                lines = [json.loads(line) for line in chunk.get("content", [])]
                if name == "wandb-history.jsonl":
                    run["history"] += lines
                elif name == "wandb-summary.json" and lines:
                    run["summary"] = lines[-1]
            if body.get("complete"):
                run["exitcode"] = body.get("exitcode", 0)
                run["state"] = "finished" if run["exitcode"] == 0 else "failed"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-request (W&B's processes exit with connections open) is not the test's concern


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: the tests read the server's state instead
            pass

        def _body(self) -> bytes:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

        def _reply(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
            body = self._body()
            if self.path.startswith("/graphql"):
                request = json.loads(body)
                self._reply(200, {"data": standin.graphql(request["query"], request.get("variables") or {})})
            elif self.path.endswith("/file_stream"):
                standin.file_stream(self.path.rstrip("/").split("/")[-2], json.loads(body))
                self._reply(200, {"exitcode": None, "limits": {}})
            else:  # telemetry (/sdk/otel/...) and anything else: W&B's client carries on without it
                self._reply(404, {"error": "not in the stand-in"})

        def do_PUT(self) -> None:  # noqa: N802
            body = self._body()
            parts = self.path.split("/")
            if len(parts) >= 4 and parts[1] == "upload":
                with standin.lock:
                    run = standin.runs.get(parts[2])
                    if run is not None:
                        run["files"]["/".join(parts[3:])] = body
                self._reply(200, {})
            else:
                self._reply(404, {"error": "not in the stand-in"})

        def do_GET(self) -> None:  # noqa: N802
            self._reply(404, {"error": "not in the stand-in"})

    return Handler
