"""The HTTP API described as OpenAPI 3.1, served at ``/api/openapi.json``.

Written by hand next to the routes it describes (web/api.py); a test checks that
every route of the blueprint is here and that the document validates.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .. import __version__
from ..core.runs import RunState

_ERROR = {"$ref": "#/components/schemas/Error"}
_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "The token after #share= in a share link."}
_STATE_CHANGING: list[dict[str, list[str]]] = [{"session": [], "csrf": []}]
_ARTIFACT = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The artifact's name as the run's artifacts list it (it may "
                            "hold slashes: plots/day.png)."}
#: The headers every file served from a run has (web/files.py).
_FILE_HEADERS = {
    "X-Content-Type-Options": {"schema": {"const": "nosniff"}},
    "Content-Security-Policy": {"schema": {"type": "string"},
                                "description": "default-src 'none'; sandbox"}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SHARE_GONE = _json(_ERROR, "The link expired or was revoked, or its run was deleted.")


def _errors(*codes: int) -> dict[str, Any]:
    sentences = {
        400: "The request is malformed; the sentence says how.",
        401: "Not logged in: open the start page and log in.",
        403: "Refused: the X-CSRF-Token header is missing or wrong, or you may not do "
             "this (a job's allowed rule, an admin route; docs/access.md).",
        404: "No such run for this user (another user's run looks the same as none).",
        413: "The body is larger than the route allows: INPUT_MAX_BYTES for an input, "
             "MAX_UPLOAD_BYTES for a start with files (refused before it is read).",
        429: "A limit on concurrent runs is reached; the sentence says which.",
    }
    return {str(c): _json(_ERROR, sentences[c]) for c in codes}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api`` (served by ``GET /api/openapi.json``), made
    once and cached: callers must not change it."""
    run_ref = {"$ref": "#/components/schemas/Run"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Flask-Realtime HTTP API",
            "version": __version__,
            "description": (
                "Start, stop and read runs of registered jobs. Live output comes over "
                "Socket.IO (docs/protocol.md); this API is for the rest. Every route needs "
                "a logged-in session (the session cookie); requests that change state also "
                "need the session's CSRF token in the X-CSRF-Token header."),
        },
        "servers": [{"url": "/"}],
        "security": [{"session": []}],
        "paths": {
            **_notification_paths(),
            **_admin_paths(run_ref),
            "/api/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document."),
                              **_errors(401)}}},
            "/api/jobs": {"get": {
                "summary": "The jobs this server offers, with their parameters",
                "operationId": "listJobs",
                "responses": {"200": _json({
                    "type": "object", "required": ["jobs"],
                    "properties": {"jobs": {"type": "array",
                                            "items": {"$ref": "#/components/schemas/Job"}}}},
                    "The jobs."), **_errors(401)}}},
            "/api/runs": {
                "get": {
                    "summary": "Your runs, newest first", "operationId": "listRuns",
                    "parameters": [
                        {"name": "job", "in": "query", "schema": {"type": "string"}},
                        {"name": "state", "in": "query",
                         "description": "Empty or absent: runs in any state.", "schema": {
                             "type": "string", "enum": ["", *(s.value for s in RunState)]}},
                        {"name": "limit", "in": "query", "schema": {
                            "type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                    ],
                    "responses": {"200": _json({
                        "type": "object", "required": ["runs"],
                        "properties": {"runs": {"type": "array", "items": run_ref}}},
                        "Your runs (never another user's)."), **_errors(400, 401)}},
                "post": {
                    "summary": "Start a job", "operationId": "startRun",
                    "security": _STATE_CHANGING,
                    "description": (
                        "JSON for jobs without file parameters; multipart/form-data for "
                        "jobs with them (any job may be started either way). Each file "
                        "may have MAX_UPLOAD_BYTES; a larger body is refused with 413 "
                        "before it is read, a larger file with 400."),
                    "requestBody": {"required": True, "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/StartRequest"}},
                        "multipart/form-data": {
                            "schema": {"$ref": "#/components/schemas/MultipartStart"}}}},
                    "responses": {
                        "201": {**_json(run_ref, "The new run (or, for a repeated "
                                                 "request_id, the run it started)."),
                                "headers": {"Location": {"schema": {"type": "string"}}}},
                        "400": _json({"$ref": "#/components/schemas/ParamErrors"},
                                     "Unknown job or invalid parameters (a file too "
                                     "large, a file for a job that takes none, a file "
                                     "parameter sent as JSON)."),
                        **_errors(401, 403, 413, 429)}},
            },
            "/api/runs/{run_id}": {"get": {
                "summary": "One run, with its result", "operationId": "getRun",
                "parameters": [_RUN_ID],
                "responses": {"200": _json(run_ref, "The run."), **_errors(401, 404)}}},
            "/api/runs/{run_id}/stop": {"post": {
                "summary": "Ask a run to stop", "operationId": "stopRun",
                "description": "Repeating it, or stopping a finished run, changes nothing.",
                "security": _STATE_CHANGING, "parameters": [_RUN_ID],
                "responses": {"200": _json({"$ref": "#/components/schemas/Ok"}, "Asked."),
                              **_errors(401, 403, 404)}}},
            "/api/runs/{run_id}/input": {"post": {
                "summary": "Type into a run: a line, or end-of-file", "operationId": "sendInput",
                "description": (
                    "Your run only, while it has not ended. text is sent exactly (end it with "
                    "a newline for a line); eof ends the run's input. The job reads it with "
                    "input(), sys.stdin or getpass (a command job: its stdin). The run's "
                    "waiting_input says when it waits, and for what prompt."),
                "security": _STATE_CHANGING, "parameters": [_RUN_ID],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/InputRequest"}}}},
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Ok"}, "Sent."),
                    "400": _json(_ERROR, "Malformed, or the run has ended, its input has "
                                         "ended, or it holds too much unread input."),
                    **_errors(401, 403, 404, 413)}}},
            "/api/runs/{run_id}/rerun": {"post": {
                "summary": "Start a run's job again with its parameters",
                "operationId": "rerunRun",
                "description": (
                    "Your run only, in any state. Checked as a new start is: a job no "
                    "longer offered or parameters it no longer accepts are a 400. The "
                    "body is optional; its request_id shares the ids of POST /api/runs."),
                "security": _STATE_CHANGING, "parameters": [_RUN_ID],
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/RerunRequest"}}}},
                "responses": {
                    "201": {**_json(run_ref, "The new run (or, for a repeated "
                                             "request_id, the run it started)."),
                            "headers": {"Location": {"schema": {"type": "string"}}}},
                    "400": _json({"$ref": "#/components/schemas/ParamErrors"},
                                 "The job is no longer offered, or its parameters are "
                                 "no longer valid."),
                    **_errors(401, 403, 404, 429)}}},
            "/api/runs/{run_id}/lines": {"get": {
                "summary": "A page of output lines after a seq (for scrolling back)",
                "operationId": "getLines",
                "parameters": [
                    _RUN_ID,
                    {"name": "after", "in": "query", "schema": {
                        "type": "integer", "minimum": 0, "maximum": 2**62, "default": 0}},
                    {"name": "limit", "in": "query", "schema": {
                        "type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}},
                ],
                "responses": {"200": _json({"$ref": "#/components/schemas/Lines"}, "The lines."),
                              **_errors(400, 401, 404)}}},
            "/api/runs/{run_id}/log": {"get": {
                "summary": "The whole retained output as plain text", "operationId": "getLog",
                "parameters": [_RUN_ID, {
                    "name": "download", "in": "query", "description": "0: show inline",
                    "schema": {"type": "string", "enum": ["0", "1"]}}],
                "responses": {"200": {"description": "The log.", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}, **_errors(401, 404)}}},
            "/api/runs/{run_id}/artifacts/{name}": {"get": {
                "summary": "One of the files a run kept, as a download",
                "operationId": "getArtifact", "parameters": [_RUN_ID, _ARTIFACT],
                "description": "Always application/octet-stream and attachment, with a safe "
                               "file name, whatever the file holds.",
                "responses": {"200": {"description": "The file.", "headers": _FILE_HEADERS,
                                      "content": {"application/octet-stream": {
                                          "schema": {"type": "string",
                                                     "format": "binary"}}}},
                              **_errors(401, 404)}}},
            "/api/runs/{run_id}/pictures/{name}": {"get": {
                "summary": "A PNG or JPEG file a run kept, as an image for <img>",
                "operationId": "getPicture", "parameters": [_RUN_ID, _ARTIFACT],
                "description": "Only files whose first bytes are PNG's or JPEG's "
                               "signature; any other (an SVG) is a 404: download it.",
                "responses": {"200": {"description": "The picture.", "headers": _FILE_HEADERS,
                                      "content": {
                                          "image/png": {"schema": {"type": "string",
                                                                   "format": "binary"}},
                                          "image/jpeg": {"schema": {"type": "string",
                                                                    "format": "binary"}}}},
                              **_errors(401, 404)}}},
            "/api/runs/{run_id}/result.csv": {"get": {
                "summary": "A run's table result as CSV", "operationId": "getResultCsv",
                "parameters": [_RUN_ID],
                "description": "Only for a result that is a list of objects; columns in "
                               "the order they first appear. Text cells starting with = + "
                               "- @, a tab or a carriage return are prefixed with ' so "
                               "that no spreadsheet runs them as formulas.",
                "responses": {"200": {"description": "The table.", "headers": _FILE_HEADERS,
                                      "content": {"text/csv": {"schema": {
                                          "type": "string"}}}},
                              **_errors(401, 404)}}},
            "/api/runs/{run_id}/shares": {
                "post": {
                    "summary": "Make a read-only link to your run", "operationId": "createShare",
                    "description": (
                        "Any logged-in user with the link can read the run, its log and "
                        "its live output; nobody but you can stop or re-run it. The token "
                        "is shown once, in url: only its SHA-256 hash is stored."),
                    "security": _STATE_CHANGING, "parameters": [_RUN_ID],
                    "requestBody": {"required": False, "content": {"application/json": {
                        "schema": {"type": "object", "properties": {"expires_in": {
                            "type": "integer", "minimum": 1, "maximum": 30 * 86_400,
                            "default": 7 * 86_400}}}}}},
                    "responses": {
                        "201": _json({"type": "object", "required": ["id", "url", "expires_at"],
                                      "properties": {
                                          "id": {"type": "string"}, "url": {"type": "string"},
                                          "expires_at": {"type": "string"}}}, "The link."),
                        **_errors(400, 401, 403, 404)}},
                "get": {
                    "summary": "Your run's share links that have not expired",
                    "operationId": "listShares", "parameters": [_RUN_ID],
                    "responses": {
                        "200": _json({"type": "object", "required": ["shares"], "properties": {
                            "shares": {"type": "array", "items": {
                                "$ref": "#/components/schemas/Share"}}}},
                            "Ids and expiry only, never the tokens."),
                        **_errors(401, 404)}}},
            "/api/runs/{run_id}/shares/{share_id}": {"delete": {
                "summary": "Revoke a share link", "operationId": "revokeShare",
                "security": _STATE_CHANGING, "parameters": [_RUN_ID, {
                    "name": "share_id", "in": "path", "required": True,
                    "schema": {"type": "string"}}],
                "responses": {"200": _json({"$ref": "#/components/schemas/Ok"}, "Revoked."),
                              **_errors(401, 403, 404)}}},
            "/api/shared/{token}": {"get": {
                "summary": "A run shared with a link (read-only)", "operationId": "getShared",
                "parameters": [_TOKEN],
                "responses": {"200": _json(run_ref, "The run, with shared_by: its owner."),
                              "401": _errors(401)["401"], "404": _SHARE_GONE}}},
            "/api/shared/{token}/lines": {"get": {
                "summary": "A page of a shared run's output lines after a seq",
                "operationId": "getSharedLines",
                "parameters": [
                    _TOKEN,
                    {"name": "after", "in": "query", "schema": {
                        "type": "integer", "minimum": 0, "maximum": 2**62, "default": 0}},
                    {"name": "limit", "in": "query", "schema": {
                        "type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}},
                ],
                "responses": {"200": _json({"$ref": "#/components/schemas/Lines"}, "The lines."),
                              **_errors(400, 401), "404": _SHARE_GONE}}},
            "/api/shared/{token}/log": {"get": {
                "summary": "A shared run's retained output as plain text",
                "operationId": "getSharedLog",
                "parameters": [_TOKEN, {
                    "name": "download", "in": "query", "description": "0: show inline",
                    "schema": {"type": "string", "enum": ["0", "1"]}}],
                "responses": {"200": {"description": "The log.", "content": {
                    "text/plain": {"schema": {"type": "string"}}}},
                    "401": _errors(401)["401"], "404": _SHARE_GONE}}},
            **_schedule_paths(),
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "Set by logging in (GET /login)."},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                         "description": "The page's <body data-csrf-token>."},
            },
            "schemas": {**_schemas(), **_schedule_schemas()},
        },
    }


_NOTIFY = {"type": "string", "enum": ["finish", "failure", "off"], "description": (
    "When the owner is told of the end; left out: their default (docs/notifications.md).")}


def _notification_paths() -> dict[str, Any]:
    """``/api/preferences`` (web/preferences.py)."""
    prefs = {"type": "object", "properties": {
        "notify": {"type": "string", "enum": ["finish", "failure", "off"]},
        "webex": {"type": "boolean"}, "webex_room": {"type": ["string", "null"]},
        "webhook_url": {"type": ["string", "null"]},
        "webhook_secret_set": {"type": "boolean"}, "webex_bot": {"type": "boolean"}}}
    change = {"type": "object", "additionalProperties": False, "properties": {
        "notify": {"type": "string", "enum": ["finish", "failure", "off"]},
        "webex": {"type": "boolean"}, "webex_room": {"type": ["string", "null"]},
        "webhook_url": {"type": ["string", "null"], "description": (
            "http(s) to a public address only (SSRF); empty removes it.")},
        "webhook_secret": {"type": ["string", "null"], "minLength": 16, "maxLength": 200,
                           "description": "Write-only: never sent back."}}}
    return {
        "/api/preferences": {
            "get": {"summary": "Your notification preferences",
                    "operationId": "getPreferences",
                    "responses": {"200": _json(prefs, "Yours."), **_errors(401)}},
            "put": {"summary": "Change some of your notification preferences",
                    "operationId": "putPreferences", "security": _STATE_CHANGING,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": change}}},
                    "responses": {"200": _json(prefs, "Saved."),
                                  **_errors(400, 401, 403)}}},
        "/api/preferences/rooms": {"get": {
            "summary": "Your Webex group spaces, for the space messages go to",
            "operationId": "listPreferenceRooms",
            "responses": {"200": _json({"type": "object", "properties": {"rooms": {
                "type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "title": {"type": "string"}}}}}},
                "Your group spaces."), **_errors(400, 401),
                "502": _json(_ERROR, "Webex could not be asked.")}}},
    }


def _schemas() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"}}},
        "ParamErrors": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "Why each parameter was rejected."}}},
        "Share": {"type": "object", "required": ["id", "expires_at"], "properties": {
            "id": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}}},
        "Ok": {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}},
        "StartRequest": {"type": "object", "required": ["job"], "properties": {
            "job": {"type": "string"},
            "params": {"type": "object", "description": "Parameter name to value."},
            "request_id": {"type": "string", "maxLength": 100, "description":
                           "Repeating a start with the same id returns the first run."},
            "notify": _NOTIFY}},
        "MultipartStart": {"type": "object", "required": ["job"], "properties": {
            "job": {"type": "string"},
            "params": {"type": "string", "description": "The other parameters, as a JSON "
                                                        "object of name: value."},
            "request_id": {"type": "string", "maxLength": 100},
            "notify": _NOTIFY},
            "additionalProperties": {"type": "string", "format": "binary",
                                     "description": "One file field per file parameter, "
                                                    "named after it."}},
        "RerunRequest": {"type": "object", "properties": {
            "request_id": {"type": "string", "maxLength": 100, "description":
                           "Repeating a re-run with the same id returns the first run."},
            "notify": _NOTIFY}},
        "InputRequest": {"type": "object", "properties": {
            "text": {"type": "string", "minLength": 1, "description":
                     "Sent exactly; at most INPUT_MAX_BYTES bytes of UTF-8."},
            "eof": {"type": "boolean", "description": "true: end the run's input."}}},
        "Run": {"type": "object", "required": [
            "id", "job", "title", "user", "params", "state", "created_at", "lines"],
            "properties": {
                "id": {"type": "string"}, "job": {"type": "string"},
                "title": {"type": "string"}, "user": {"type": "string"},
                "params": {"type": "object"},
                "state": {"type": "string", "enum": [s.value for s in RunState]},
                "created_at": {"type": "string", "format": "date-time"},
                "started_at": nullable_str, "ended_at": nullable_str, "error": nullable_str,
                "has_result": {"type": "boolean"},
                "waiting_input": {
                    "type": ["object", "null"], "description":
                    "While the job waits for input: its prompt, and whether it is secret "
                    "(getpass; what is typed then shows as *** in the output).",
                    "properties": {"prompt": {"type": "string"},
                                   "secret": {"type": "boolean"}}},
                "schedule_id": nullable_str, "schedule_name": nullable_str,
                "result": {"description": "Only in GET /api/runs/{run_id}."},
                "artifacts": {"type": "array", "description": "The files the run kept, "
                              "listed when it ends.", "items": {
                                  "type": "object", "required": ["name", "size", "picture"],
                                  "properties": {
                                      "name": {"type": "string"}, "size": {"type": "integer"},
                                      "picture": {"enum": ["png", "jpeg", None]}}}},
                "lines": {"type": "integer", "description": "The seq of the last line."},
                "notify": {**_NOTIFY, "type": ["string", "null"]},
                "notifications": {"type": "object", "description": (
                    "Per channel (webex, webhook): status (pending, sent, failed), "
                    "reason, attempts, at, key (docs/notifications.md)."),
                    "additionalProperties": {"type": "object"}}}},
        "Job": {"type": "object", "required": ["name", "title", "params"], "properties": {
            "name": {"type": "string"}, "title": {"type": "string"},
            "description": {"type": "string"}, "async": {"type": "boolean"},
            "group": {"type": "string", "enum": ["builtin", "webex", "user"],
                      "description": "Where the page lists the job: the package's own "
                                     "jobs, the Webex ones, or the JOBS modules'."},
            "params": {"type": "array", "items": {"$ref": "#/components/schemas/Param"}}}},
        "Param": {"type": "object", "required": ["name", "type", "required"], "properties": {
            "name": {"type": "string"},
            "type": {"type": "string",
                     "enum": ["int", "float", "str", "bool", "choice", "file"]},
            "max_bytes": {"type": "integer", "description": "A file's size limit "
                                                            "(MAX_UPLOAD_BYTES)."},
            "required": {"type": "boolean"}, "default": {}, "choices": {"type": "array"},
            "help": {"type": "string"}, "min": {"type": ["number", "null"]},
            "max": {"type": ["number", "null"]}}},
        "Line": {"type": "object", "required": ["stream", "text"], "properties": {
            "stream": {"type": "string",
                       "enum": ["stdout", "stderr", "log", "system", "stdin"]},
            "text": {"type": "string"},
            "end": {"type": "string", "description": "Absent for a newline."}}},
        "Lines": {"type": "object", "required": ["run_id", "first_seq", "lines", "end_seq"],
                  "properties": {
                      "run_id": {"type": "string"}, "first_seq": {"type": "integer"},
                      "end_seq": {"type": "integer"},
                      "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}},
                      "skipped": {"type": "integer"},
                      "times": {"type": "array", "items": {
                          "type": "array", "prefixItems": [{"type": "integer"},
                                                           {"type": "integer"}]}}}},
    }


# -- schedules (web/schedules.py, docs/schedules.md) -------------------------------------

_SCHEDULE_ID = {"name": "schedule_id", "in": "path", "required": True,
                "schema": {"type": "string"}}


def _schedule_errors(*codes: int) -> dict[str, Any]:
    sentences = {
        400: "Not a schedule (or a job or parameters it cannot run): one sentence says why.",
        401: "Not logged in: open the start page and log in.",
        403: "The X-CSRF-Token header is missing or wrong.",
        404: "No such schedule for this user (another user's looks the same as none).",
        429: "A limit is reached (schedules per user, or runs going); the sentence says which.",
        503: "Schedules are off on this server (SCHEDULER=false).",
    }
    return {str(c): _json(_ERROR, sentences[c]) for c in codes}


def _schedule_paths() -> dict[str, Any]:
    one = {"$ref": "#/components/schemas/Schedule"}
    body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ScheduleRequest"}}}}
    ok = _json(one, "The schedule as saved.")

    def action(summary: str, operation: str, description: str) -> dict[str, Any]:
        return {"post": {
            "summary": summary, "operationId": operation, "description": description,
            "security": _STATE_CHANGING, "parameters": [_SCHEDULE_ID],
            "responses": {"200": ok, **_schedule_errors(401, 403, 404, 503)}}}

    return {
        "/api/schedules": {
            "get": {"summary": "Your schedules, oldest first", "operationId": "listSchedules",
                    "responses": {"200": _json({
                        "type": "object", "required": ["schedules"], "properties": {
                            "schedules": {"type": "array", "items": one}}}, "Yours only."),
                        **_schedule_errors(401, 503)}},
            "post": {"summary": "Make a schedule", "operationId": "createSchedule",
                     "security": _STATE_CHANGING, "requestBody": body,
                     "responses": {
                         "201": {**_json(one, "The new schedule."),
                                 "headers": {"Location": {"schema": {"type": "string"}}}},
                         **_schedule_errors(400, 401, 403, 429, 503)}}},
        "/api/schedules/preview": {"post": {
            "summary": "The next five due times of a schedule, before saving it",
            "operationId": "previewSchedule", "security": _STATE_CHANGING,
            "requestBody": body,
            "responses": {"200": _json({"$ref": "#/components/schemas/Fires"},
                                       "Nothing is saved."),
                          **_schedule_errors(400, 401, 403, 503)}}},
        "/api/schedules/{schedule_id}": {
            "get": {"summary": "One of your schedules", "operationId": "getSchedule",
                    "parameters": [_SCHEDULE_ID],
                    "responses": {"200": ok, **_schedule_errors(401, 404, 503)}},
            "patch": {"summary": "Change a schedule's settings (only those sent)",
                      "operationId": "updateSchedule", "security": _STATE_CHANGING,
                      "parameters": [_SCHEDULE_ID], "requestBody": body,
                      "responses": {"200": ok, **_schedule_errors(400, 401, 403, 404, 503)}},
            "delete": {"summary": "Delete a schedule (its runs stay)",
                       "operationId": "deleteSchedule", "security": _STATE_CHANGING,
                       "parameters": [_SCHEDULE_ID],
                       "responses": {"200": _json({"$ref": "#/components/schemas/Ok"},
                                                  "Deleted."),
                                     **_schedule_errors(401, 403, 404, 503)}}},
        "/api/schedules/{schedule_id}/pause": action(
            "Pause a schedule", "pauseSchedule", "It fires no more until resumed."),
        "/api/schedules/{schedule_id}/resume": action(
            "Resume a schedule", "resumeSchedule",
            "It fires again from its next due time after now; clears paused_reason."),
        "/api/schedules/{schedule_id}/run": {"post": {
            "summary": "Run a schedule's job now", "operationId": "runScheduleNow",
            "description": "Its due times stay as they are; the run limits apply.",
            "security": _STATE_CHANGING, "parameters": [_SCHEDULE_ID],
            "responses": {
                "201": {**_json({"$ref": "#/components/schemas/Run"}, "The run."),
                        "headers": {"Location": {"schema": {"type": "string"}}}},
                **_schedule_errors(400, 401, 403, 404, 429, 503)}}},
    }


def _schedule_schemas() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    nullable_num = {"type": ["number", "null"]}
    settings = {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "job": {"type": "string"},
        "params": {"type": "object", "description": "Parameter name to value."},
        "cron": {"type": ["string", "null"], "description":
                 "Five fields (minute hour day-of-month month day-of-week) or @hourly, "
                 "@daily, @weekly, @monthly, @yearly; give cron or interval."},
        "interval": {"type": ["integer", "null"], "description":
                     "Seconds between fires (at least SCHEDULE_MIN_INTERVAL_SECONDS)."},
        "timezone": {"type": "string", "default": "UTC",
                     "description": "An IANA time zone name."},
        "end_at": {"type": ["string", "null"], "format": "date-time",
                   "description": "No fire after this time (with its UTC offset)."},
        "enabled": {"type": "boolean", "default": True},
        "overlap": {"type": "string", "enum": ["skip", "allow", "queue"], "default": "skip"},
        "missed": {"type": "string", "enum": ["skip", "run"], "default": "skip"},
        "grace_seconds": {"type": "integer", "minimum": 0, "maximum": 7 * 86_400,
                          "default": 3600},
        "notify": {"type": "string", "enum": ["none", "always", "failure"],
                   "default": "none"},
    }
    return {
        "ScheduleRequest": {"type": "object", "properties": settings,
                            "additionalProperties": False},
        "Schedule": {"type": "object", "required": [
            "id", "user", "name", "job", "params", "timezone", "enabled", "next_fire_at"],
            "properties": {
                **settings, "id": {"type": "string"}, "user": {"type": "string"},
                "created_at": {"type": "string"}, "next_fire": nullable_num,
                "next_fire_at": nullable_str, "last_due": nullable_num,
                "last_due_at": nullable_str, "queued_due": nullable_num,
                "queued_due_at": nullable_str, "last_run_id": nullable_str,
                "last_error": nullable_str, "last_error_at": nullable_str,
                "paused_reason": {"type": ["string", "null"], "description":
                                  "Why the scheduler paused it (an expired login); "
                                  "the page shows it as a banner."},
                "anchor": {"type": "number"}, "version": {"type": "integer"},
                "last_run": {"type": ["object", "null"], "description":
                             "The newest run it made: id, state and times."}}},
        "Fires": {"type": "object", "required": ["timezone", "fires"], "properties": {
            "timezone": {"type": "string"},
            "fires": {"type": "array", "items": {
                "type": "object", "required": ["at", "local"], "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "local": {"type": "string",
                              "description": "The wall time in the schedule's zone."}}}}}},
    }


def _admin_paths(run_ref: dict[str, Any]) -> dict[str, Any]:
    """The admins' routes (web/admin.py, docs/access.md): 403 for anyone else."""
    filters = [{"name": name, "in": "query", "schema": {"type": "string", "maxLength": 320}}
               for name in ("user", "job")]
    state = {"name": "state", "in": "query", "schema": {
        "type": "string", "enum": ["", *(s.value for s in RunState)]}}
    limit = {"name": "limit", "in": "query", "schema": {
        "type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
    entry = {"type": "object", "required": ["id", "time", "at", "actor", "action"]}
    return {
        "/api/admin/runs": {"get": {
            "summary": "Every user's runs, newest first (admins only)",
            "operationId": "adminListRuns", "parameters": [*filters, state, limit],
            "responses": {"200": _json({
                "type": "object", "required": ["runs"],
                "properties": {"runs": {"type": "array", "items": run_ref}}}, "The runs."),
                **_errors(400, 401, 403)}}},
        "/api/admin/runs/{run_id}": {"get": {
            "summary": "Any run, with its result (admins only)", "operationId": "adminGetRun",
            "parameters": [_RUN_ID],
            "responses": {"200": _json(run_ref, "The run."), **_errors(401, 403, 404)}}},
        "/api/admin/runs/{run_id}/lines": {"get": {
            "summary": "A page of any run's output (admins only)",
            "operationId": "adminGetLines",
            "parameters": [
                _RUN_ID,
                {"name": "after", "in": "query", "schema": {
                    "type": "integer", "minimum": 0, "maximum": 2**62, "default": 0}},
                {"name": "limit", "in": "query", "schema": {
                    "type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}}],
            "responses": {"200": _json({"$ref": "#/components/schemas/Lines"}, "The lines."),
                          **_errors(400, 401, 403, 404)}}},
        "/api/admin/runs/{run_id}/log": {"get": {
            "summary": "Any run's whole retained output as plain text (admins only)",
            "operationId": "adminGetLog", "parameters": [_RUN_ID],
            "responses": {"200": {"description": "The log.",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **_errors(401, 403, 404)}}},
        "/api/admin/runs/{run_id}/stop": {"post": {
            "summary": "Stop any run (admins only)", "operationId": "adminStopRun",
            "security": _STATE_CHANGING, "parameters": [_RUN_ID],
            "responses": {"200": _json({"$ref": "#/components/schemas/Ok"}, "Asked."),
                          **_errors(401, 403, 404)}}},
        "/api/admin/audit": {"get": {
            "summary": "The audit trail, newest first (admins only)",
            "operationId": "adminAudit",
            "parameters": [
                {"name": "actor", "in": "query", "schema": {"type": "string", "maxLength": 320}},
                {"name": "action", "in": "query", "schema": {"type": "string"}},
                {"name": "before", "in": "query", "schema": {"type": "string", "maxLength": 320},
                 "description": "The next page: the `next` of the page before."},
                {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}},
                {"name": "download", "in": "query", "schema": {"enum": ["0", "1"]},
                 "description": "1: every matching entry, as a file."},
                limit],
            "responses": {"200": {"description": "A page, or the download.", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "entries": {"type": "array", "items": entry},
                    "next": {"type": ["string", "null"]}}}},
                "text/csv": {"schema": {"type": "string"}}}},
                **_errors(400, 401, 403)}}},
    }
